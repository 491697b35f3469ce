/**
 * Interactive logins in progress, by random flow id, for `GET /v1/flows/{flow_id}`. There is
 * only ever one pending flow per credential: a new login supersedes the previous one (a user who
 * abandoned a browser tab and runs `keyward login` again should not have to wait for a timeout).
 * Finished flows stay readable for a while so a polling CLI sees the outcome.
 */
import crypto from 'node:crypto';
import type { ErrorCode } from '../../shared/errors.js';
import type { FlowResponse } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';

/** One interactive login. */
export interface Flow {
  readonly id: string;
  readonly name: string;
  readonly kind: 'authorization_code' | 'device_code';
  state: FlowResponse['state'];
  error: { code: ErrorCode; message: string } | undefined;
  settledAt: number | undefined;
  /** Stops the flow's listener or polling loop; set once the flow has started. */
  stop: () => void;
}

/** The registry of flows. */
export class FlowRegistry {
  readonly #flows = new Map<string, Flow>();
  readonly #pendingByName = new Map<string, Flow>();
  readonly #retentionMs: number;
  readonly #now: () => number;

  constructor(opts: { retentionMs: number; now: () => number }) {
    this.#retentionMs = opts.retentionMs;
    this.#now = opts.now;
  }

  /** Registers a new pending flow for `name`, failing the credential's previous pending flow. */
  begin(name: string, kind: Flow['kind']): Flow {
    this.#prune();
    const previous = this.#pendingByName.get(name);
    if (previous !== undefined) {
      this.fail(previous, 'LOGIN_REQUIRED', `superseded by a newer login for "${name}"`);
    }
    const flow: Flow = {
      id: crypto.randomBytes(16).toString('base64url'),
      name,
      kind,
      state: 'pending',
      error: undefined,
      settledAt: undefined,
      stop: () => {},
    };
    this.#flows.set(flow.id, flow);
    this.#pendingByName.set(name, flow);
    return flow;
  }

  /** Marks a flow complete; a flow that already settled stays as it was. */
  complete(flow: Flow): void {
    this.#settle(flow, () => {
      flow.state = 'complete';
    });
  }

  /** Marks a flow failed and stops it; a flow that already settled stays as it was. */
  fail(flow: Flow, code: ErrorCode, message: string): void {
    this.#settle(flow, () => {
      flow.state = 'failed';
      flow.error = { code, message };
    });
  }

  /** Tells whether a flow is still pending. */
  isPending(flow: Flow): boolean {
    return flow.state === 'pending';
  }

  /** Fails the pending flow of a credential, if any (the credential is being removed). */
  cancelFor(name: string, message: string): void {
    const flow = this.#pendingByName.get(name);
    if (flow !== undefined) this.fail(flow, 'LOGIN_REQUIRED', message);
  }

  /** Returns a flow's public state; NOT_FOUND for unknown or expired ids. */
  status(id: string): FlowResponse {
    this.#prune();
    const flow = this.#flows.get(id);
    if (flow === undefined)
      throw new ApiError('NOT_FOUND', 'no such login flow (it may have finished long ago)');
    return flow.error === undefined ? { state: flow.state } : { state: flow.state, error: { ...flow.error } };
  }

  /** Fails and stops every pending flow. */
  close(message: (name: string) => string): void {
    for (const flow of [...this.#pendingByName.values()])
      this.fail(flow, 'LOGIN_REQUIRED', message(flow.name));
  }

  #settle(flow: Flow, apply: () => void): void {
    if (flow.state !== 'pending') return;
    // Settle before stopping, so a stop() that reports back finds the flow already settled.
    apply();
    flow.settledAt = this.#now();
    if (this.#pendingByName.get(flow.name) === flow) this.#pendingByName.delete(flow.name);
    try {
      flow.stop();
    } catch {
      // Stopping is best effort: a listener that is already closed is fine.
    }
  }

  #prune(): void {
    const cutoff = this.#now() - this.#retentionMs;
    for (const [id, flow] of this.#flows) {
      if (flow.settledAt !== undefined && flow.settledAt < cutoff) this.#flows.delete(id);
    }
  }
}
