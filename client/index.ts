/**
 * keyward's client SDK: what an MCP server imports to get a valid access token. Zero runtime
 * dependencies (only `node:` modules and keyward's shared/ contract code), so importing it loads
 * no SQLite, no sodium, no fastify. Refresh tokens never reach this side.
 *
 *   const kw = new KeywardClient();
 *   const { accessToken } = await kw.getToken('github');
 */
import { resolvePaths } from '../shared/paths.js';
import type { HealthResponse, TokenResponse } from '../shared/protocol.js';
import { KeywardError } from './errors.js';
import { requestJson, type TransportOptions } from './transport.js';

export type { ClientErrorCode } from '../shared/errors.js';
export { KeywardError } from './errors.js';

/** Optional overrides; `new KeywardClient()` works wherever the daemon runs with defaults. */
export interface KeywardClientOptions {
  /** The daemon's socket; default `KEYWARD_SOCKET` or the platform default. */
  socketPath?: string;
  /** A client token; default `KEYWARD_CLIENT_TOKEN`. */
  clientToken?: string;
  /** Per-request timeout in milliseconds; default 60 000 (a refresh may wait on the authorization server). */
  timeoutMs?: number;
}

/** An access token as the SDK returns it. */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  expiresAt: Date | null;
  scope: string | null;
}

/** Options for `getToken`. */
export interface GetTokenOptions {
  /** Seconds of life the token must have left (capped by half its lifetime); default 60. */
  minTtl?: number;
}

function toAccessToken(token: TokenResponse): AccessToken {
  return {
    accessToken: token.access_token,
    tokenType: token.token_type,
    expiresAt: token.expires_at === null ? null : new Date(token.expires_at),
    scope: token.scope,
  };
}

function credentialRoute(name: string, action: string): string {
  return `/credentials/${encodeURIComponent(name)}/${action}`;
}

/** Talks to the keyward daemon over its socket. */
export class KeywardClient {
  readonly socketPath: string;
  readonly #transport: TransportOptions;

  constructor(options: KeywardClientOptions = {}) {
    this.socketPath = options.socketPath ?? resolvePaths().socket;
    const envToken = process.env.KEYWARD_CLIENT_TOKEN;
    this.#transport = {
      socketPath: this.socketPath,
      bearer: options.clientToken ?? (envToken === '' ? undefined : envToken),
      timeoutMs: options.timeoutMs ?? 60_000,
    };
  }

  /** Checks that the daemon answers; returns its version. */
  health(): Promise<HealthResponse> {
    return requestJson<HealthResponse>(this.#transport, 'GET', '/health');
  }

  /** Returns a valid access token for a credential. */
  async getToken(name: string, options: GetTokenOptions = {}): Promise<AccessToken> {
    const body = options.minTtl === undefined ? {} : { min_ttl: options.minTtl };
    const token = await requestJson<TokenResponse>(
      this.#transport,
      'POST',
      credentialRoute(name, 'token'),
      body,
    );
    return toAccessToken(token);
  }

  /** Reports that `accessToken` was rejected; returns a fresh token (or the current one if it was already replaced). */
  async invalidate(name: string, accessToken: string): Promise<AccessToken> {
    const token = await requestJson<TokenResponse>(
      this.#transport,
      'POST',
      credentialRoute(name, 'invalidate'),
      {
        access_token: accessToken,
      },
    );
    return toAccessToken(token);
  }

  /**
   * Calls `fetch` with the credential's token in `Authorization`; on a 401 reports the token and
   * retries once with the fresh one. A body that is a stream cannot be sent twice, so such a
   * request is not retried.
   */
  async fetch(name: string, input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const first = await this.getToken(name);
    const response = await fetch(input, withAuthorization(input, init, first));
    if (response.status !== 401 || isStreamBody(init.body)) return response;
    await response.body?.cancel();
    const fresh = await this.invalidate(name, first.accessToken);
    return fetch(input, withAuthorization(input, init, fresh));
  }
}

function withAuthorization(
  input: string | URL | Request,
  init: RequestInit,
  token: AccessToken,
): RequestInit {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set('authorization', `${token.tokenType} ${token.accessToken}`);
  return { ...init, headers };
}

function isStreamBody(body: RequestInit['body']): boolean {
  return typeof ReadableStream !== 'undefined' && body instanceof ReadableStream;
}

/** Tells whether an error is a `KeywardError` with the given code. */
export function isKeywardError(error: unknown, code?: KeywardError['code']): error is KeywardError {
  return error instanceof KeywardError && (code === undefined || error.code === code);
}
