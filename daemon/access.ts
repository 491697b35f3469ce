/**
 * Who is calling, and what they may do (contract.md "Access control"). The CLI presents the admin
 * token; an MCP server may present a client token limited to its allowed credentials; a request
 * with no token gets full access in `open` mode (same-uid peers, as with ssh-agent) and only
 * `health` in `strict` mode.
 */
import { ApiError } from './api-error.js';
import type { Secret } from './secret.js';

/** The levels a route can require. */
export type RouteAccess =
  /** anyone who reached the socket, with or without a token */
  | 'public'
  /** a caller allowed to use the credential named in the route */
  | 'credential'
  /** the CLI (admin token), or a tokenless caller in `open` mode */
  | 'admin';

/** The access mode. */
export type Policy = 'open' | 'strict';

/** Who a request comes from. */
export type Caller =
  | { kind: 'admin' }
  | { kind: 'client'; name: string; allow: ReadonlySet<string> }
  | { kind: 'anonymous' };

/** Looks a client token up; access control's client registry implements it. */
export interface ClientDirectory {
  /** Returns the client a token belongs to, or undefined when none does. */
  identify(token: string): { name: string; allow: ReadonlySet<string> } | undefined;
}

/** Resolves callers from the `Authorization` header and decides what they may do. */
export class AccessControl {
  readonly #adminToken: Secret;
  readonly #clients: ClientDirectory | undefined;
  #policy: () => Policy;

  constructor(deps: { adminToken: Secret; clients?: ClientDirectory; policy?: () => Policy }) {
    this.#adminToken = deps.adminToken;
    this.#clients = deps.clients;
    this.#policy = deps.policy ?? (() => 'open');
  }

  /** Identifies the caller; an unknown token is `UNAUTHENTICATED` even where none would be needed. */
  identify(authorization: string | undefined): Caller {
    if (authorization === undefined || authorization === '') return { kind: 'anonymous' };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) {
      throw new ApiError('UNAUTHENTICATED', 'the Authorization header must read "Bearer <token>"');
    }
    const token = match[1];
    if (this.#adminToken.equals(token)) return { kind: 'admin' };
    const client = this.#clients?.identify(token);
    if (client) return { kind: 'client', ...client };
    throw new ApiError(
      'UNAUTHENTICATED',
      'unknown or revoked token: check KEYWARD_CLIENT_TOKEN, or issue a new one with: keyward client add',
    );
  }

  /** Throws unless `caller` may call a route of `access` level (for `credential`, on `credential`). */
  authorize(caller: Caller, access: RouteAccess, credential?: string): void {
    if (access === 'public' || caller.kind === 'admin') return;
    if (caller.kind === 'anonymous') {
      if (this.#policy() === 'open') return;
      throw new ApiError(
        'UNAUTHENTICATED',
        'keyward is in strict mode: present a client token (KEYWARD_CLIENT_TOKEN; create one with: keyward client add)',
      );
    }
    if (access === 'credential' && credential !== undefined && caller.allow.has(credential)) return;
    throw new ApiError(
      'FORBIDDEN',
      access === 'credential'
        ? `client "${caller.name}" may not use credential "${credential}": allow it with: keyward client add ${caller.name} --allow ...`
        : `client "${caller.name}" may only request tokens; this route needs the keyward CLI`,
    );
  }
}
