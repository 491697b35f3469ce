/**
 * Coalesces repeated refusals for the audit log (contract.md "Security (v2)": the log cannot be
 * flushed). Requests that fail and were not made with the admin token cost the caller nothing to
 * repeat, so a line each would let anyone push older lines out of the rotated log. Within a
 * window, the first refusal of each kind (event, caller, client, credential, target, outcome,
 * code, peer uid and executable) is written at once; repeats are counted and written as one
 * line with `count` when the window closes. Past a number of kinds per window, every further
 * refusal goes into one `audit.coalesced` line: however a caller varies its requests, refusals
 * write at most `2 * maxKinds + 1` lines per window.
 */
import type { AuditEvent } from './audit-log.js';

/** How long repeats are counted before their line is written. */
export const COALESCE_WINDOW_MS = 10_000;
/** Kinds of refusal with lines of their own per window; beyond, one shared line counts the rest. */
export const COALESCE_MAX_KINDS = 32;

/** An event to write, with how many requests it stands for when more than one. */
export interface CountedEvent {
  event: AuditEvent;
  count?: number;
}

interface Kind {
  event: AuditEvent;
  repeats: number;
  /** The repeats' pid when they all came from one process, else null. */
  pid: number | null | undefined;
}

/** Tells whether an event is a refusal whose repeats are counted rather than each written. */
export function isCoalescible(event: AuditEvent): boolean {
  return event.outcome !== 'ok' && event.caller !== 'admin';
}

/** Counts repeated refusals per window; see the module comment. */
export class RefusalCoalescer {
  readonly #windowMs: number;
  readonly #maxKinds: number;
  readonly #onWindowEnd: () => void;
  #kinds = new Map<string, Kind>();
  #overflow = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { onWindowEnd: () => void; windowMs?: number; maxKinds?: number }) {
    this.#onWindowEnd = opts.onWindowEnd;
    this.#windowMs = opts.windowMs ?? COALESCE_WINDOW_MS;
    this.#maxKinds = opts.maxKinds ?? COALESCE_MAX_KINDS;
  }

  /** Returns true when the refusal is to be written now (first of its kind), false when counted. */
  offer(event: AuditEvent): boolean {
    const key = JSON.stringify([
      event.event,
      event.caller ?? null,
      event.client ?? null,
      event.credential ?? null,
      event.target ?? null,
      event.outcome,
      event.code ?? null,
      event.peer?.uid ?? null,
      event.peer?.exe ?? null,
    ]);
    this.#arm();
    const kind = this.#kinds.get(key);
    if (kind !== undefined) {
      const pid = event.peer?.pid ?? null;
      kind.pid = kind.repeats === 0 || kind.pid === pid ? pid : null;
      kind.repeats += 1;
      return false;
    }
    if (this.#kinds.size >= this.#maxKinds) {
      this.#overflow += 1;
      return false;
    }
    this.#kinds.set(key, { event, repeats: 0, pid: undefined });
    return true;
  }

  /** Returns the counted lines of the window so far and starts a new one. */
  drain(): CountedEvent[] {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const out: CountedEvent[] = [];
    for (const kind of this.#kinds.values()) {
      if (kind.repeats === 0) continue;
      const peer = kind.event.peer ? { ...kind.event.peer, pid: kind.pid ?? null } : kind.event.peer;
      out.push({ event: { ...kind.event, peer }, count: kind.repeats });
    }
    if (this.#overflow > 0) {
      out.push({
        event: {
          event: 'audit.coalesced',
          target: `refusals of more than ${this.#maxKinds} kinds in ${this.#windowMs / 1000} s`,
          outcome: 'denied',
        },
        count: this.#overflow,
      });
    }
    this.#kinds = new Map();
    this.#overflow = 0;
    return out;
  }

  /** Stops the window's timer (the caller drains what is left). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onWindowEnd();
    }, this.#windowMs);
    this.#timer.unref();
  }
}
