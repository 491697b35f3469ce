/**
 * The admin side of access control, behind the `/v1/clients`, `/v1/policy`, `/v1/audit/verify` and
 * `/v1/vault/rotate-key` routes: the client registry, the access policy (a clear vault setting),
 * audit verification and moving the data key under a new key-encryption key.
 */
import type { KeywardPaths } from '../shared/paths.js';
import {
  ACCESS_POLICIES,
  type AccessPolicy,
  type AddClientRequest,
  type AddClientResponse,
  type AuditVerifyResponse,
  type ClientListResponse,
  type PolicyResponse,
  type RemoveClientResponse,
  type RotateKeyRequest,
  type RotateKeyResponse,
} from '../shared/protocol.js';
import { ApiError } from './api-error.js';
import type { AuditEvent, AuditLog } from './audit-log.js';
import type { ClientRegistry } from './clients.js';
import type { Logger } from './log.js';
import { peerOf } from './peer-guard.js';
import { Secret } from './secret.js';
import type { AuditedRouteEvent } from './server.js';
import { Vault } from './vault/vault.js';

/** The clear vault setting holding the access policy. */
export const POLICY_SETTING = 'policy';

/**
 * Reads the stored policy: `open` when none was ever set; a value that is unreadable, or whose row
 * fails to authenticate (edited, rolled back or deleted offline), fails closed to `strict`.
 */
export function readPolicy(vault: Pick<Vault, 'getSetting'>, log?: Logger): AccessPolicy {
  let stored: string | undefined;
  try {
    stored = vault.getSetting(POLICY_SETTING);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'VAULT_CORRUPT')) throw error;
    log?.error({ err: error }, 'the stored access policy failed to authenticate: using strict');
    return 'strict';
  }
  if (stored === undefined) return 'open';
  if ((ACCESS_POLICIES as readonly string[]).includes(stored)) return stored as AccessPolicy;
  log?.warn({ stored }, 'the stored access policy is not open or strict: using strict');
  return 'strict';
}

/** Clients, policy, audit verification and key rotation for the admin routes. */
export class AccessService {
  readonly #vault: Vault;
  readonly #paths: KeywardPaths;
  readonly #clients: ClientRegistry;
  readonly #audit: AuditLog;
  readonly #log: Logger;
  #policy: AccessPolicy | undefined;

  constructor(deps: {
    vault: Vault;
    paths: KeywardPaths;
    clients: ClientRegistry;
    audit: AuditLog;
    log: Logger;
  }) {
    this.#vault = deps.vault;
    this.#paths = deps.paths;
    this.#clients = deps.clients;
    this.#audit = deps.audit;
    this.#log = deps.log;
  }

  /**
   * The access mode now in force; `AccessControl` asks on every request. While a passphrase
   * vault is locked the stored policy cannot be authenticated, so it is `strict` until unlock:
   * an `open` written into the file offline must not open anything.
   */
  policy(): AccessPolicy {
    if (this.#vault.locked) return 'strict';
    this.#policy ??= readPolicy(this.#vault, this.#log);
    return this.#policy;
  }

  /** Changes the access mode; it applies from the next request on. */
  setPolicy(policy: AccessPolicy): PolicyResponse {
    this.#vault.setSetting(POLICY_SETTING, policy);
    this.#policy = policy;
    this.#log.info({ policy }, 'access policy changed');
    return { policy };
  }

  /** Lists the registered clients. */
  listClients(): ClientListResponse {
    return { clients: this.#clients.list() };
  }

  /** Registers a client; the answer carries its token, which is not kept anywhere. */
  addClient(req: AddClientRequest): AddClientResponse {
    const { entry, token } = this.#clients.add(req.name, req.allow);
    try {
      this.#log.info({ client: entry.name, allow: entry.allow }, 'client added');
      // The one place a client token leaves the daemon: the answer to the CLI that asked.
      return { ...entry, token: token.reveal() };
    } finally {
      token.wipe();
    }
  }

  /** Revokes a client at once. */
  removeClient(name: string): RemoveClientResponse {
    this.#clients.remove(name);
    this.#log.info({ client: name }, 'client removed');
    return { removed: true };
  }

  /** Verifies the audit log's chain across its files. */
  verifyAudit(): AuditVerifyResponse {
    return this.#audit.verify();
  }

  /**
   * Moves the data key under a new key-encryption key (contract: `keyward rotate-key`). Leaving
   * or changing a passphrase store takes the current passphrase: the admin token alone must not
   * be enough to strip the vault's at-rest protection. A wrong one changes nothing.
   */
  async rotateKey(req: RotateKeyRequest): Promise<RotateKeyResponse> {
    if (this.#vault.locked) {
      throw new ApiError('VAULT_LOCKED', 'the vault is locked: run: keyward unlock, then rotate the key');
    }
    if (req.key_store === 'passphrase' && req.passphrase === undefined) {
      throw new ApiError('INVALID_REQUEST', 'the passphrase key store needs a new passphrase');
    }
    if (req.key_store !== 'passphrase' && req.passphrase !== undefined) {
      throw new ApiError('INVALID_REQUEST', `the ${req.key_store} key store takes no passphrase`);
    }
    const current =
      req.current_passphrase === undefined ? undefined : Secret.fromString(req.current_passphrase);
    const next = req.passphrase === undefined ? undefined : Secret.fromString(req.passphrase);
    try {
      if (this.#vault.keyStore === 'passphrase') await this.#checkPassphrase(current);
      const from = this.#vault.keyStore;
      const result = await this.#vault.rewrap({
        keyStore: req.key_store,
        ...(next ? { passphrase: next } : {}),
      });
      this.#log.info({ from, to: req.key_store }, 'the vault key was rewrapped');
      if (result.leftover) this.#log.warn(result.leftover);
      return { key_store: req.key_store, leftover: result.leftover };
    } finally {
      current?.wipe();
      next?.wipe();
    }
  }

  /** Proves the current passphrase on a second, short-lived handle of the vault. */
  async #checkPassphrase(passphrase: Secret | undefined): Promise<void> {
    if (passphrase === undefined) {
      throw new ApiError(
        'INVALID_REQUEST',
        'the vault is protected by a passphrase: give the current one too',
      );
    }
    const check = await Vault.open(this.#paths);
    try {
      await check.unlock(passphrase);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'VAULT_LOCKED') {
        throw new ApiError('FORBIDDEN', 'wrong current passphrase: the vault key was not changed');
      }
      throw error;
    } finally {
      check.close();
    }
  }
}

/** Names an admin change's object from the request body's non-secret fields or the path. */
function targetOf(event: AuditedRouteEvent): string | null {
  const body = (event.request.body ?? {}) as Record<string, unknown>;
  const params = (event.request.params ?? {}) as Record<string, unknown>;
  const pick = (value: unknown): string | null => (typeof value === 'string' ? value : null);
  switch (event.route.audit) {
    case 'client.add':
      return pick(body.name);
    case 'client.remove':
      return pick(params.client);
    case 'policy.set':
      return pick(body.policy);
    case 'key.rotate':
      return pick(body.key_store);
    default:
      return null;
  }
}

/**
 * Turns a finished request to an audited route into an audit event: who (caller kind, client,
 * the socket's peer), what (event, credential, target), how it ended and, for tokens, whether a
 * refresh happened while it was served. Only names and codes are copied, never a body's secrets.
 */
export function auditEventOf(event: AuditedRouteEvent, vault: Pick<Vault, 'getCredential'>): AuditEvent {
  const { request, route } = event;
  const caller = request.caller;
  const peer = peerOf(request.raw.socket);
  const body = (request.body ?? {}) as Record<string, unknown>;
  const credential =
    event.credential ??
    (route.audit === 'credential.add' && typeof body.name === 'string' ? body.name : null);
  let refreshed: boolean | null = null;
  if (route.access === 'credential' && event.outcome === 'ok' && credential !== null) {
    const record = vault.getCredential(credential);
    const last = record?.state.last_refresh_at;
    refreshed =
      record?.kind === 'oauth' &&
      typeof last === 'string' &&
      Date.parse(last) >= (event.startedAt ?? Number.NaN);
  }
  return {
    event: route.audit ?? route.path,
    credential,
    client: caller?.kind === 'client' ? caller.name : null,
    caller: caller?.kind ?? null,
    target: targetOf(event),
    peer: peer ? { pid: peer.pid, uid: peer.uid, exe: peer.exe } : null,
    outcome: event.outcome,
    code: event.code ?? null,
    refreshed,
  };
}
