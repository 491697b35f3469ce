/**
 * The `fetch` the proxy gives the MCP SDK's client transports: every request to the remote MCP
 * server carries `Authorization` from the daemon (the SDK never sees a refresh token, so the
 * daemon stays the only refresher). It builds on `KeywardClient.fetch`, the same call
 * `keywardFetch` (keyward/mcp) makes: a 401 reports the token and is retried once with the fresh
 * one. Unlike `keywardFetch`, which can only tell its caller what to run, the proxy owns a user
 * session, so it also answers:
 * - `LOGIN_REQUIRED` from the daemon (never logged in, refresh token rejected): a login, then one retry;
 * - 403 `insufficient_scope` (RFC 6750 §3.1): a step-up login for the granted scope plus the one
 *   the server names, then one retry.
 */
import { KeywardError } from '../../client/errors.js';
import type { KeywardClient } from '../../client/index.js';
import { scopeTokens, unionScopes } from '../../shared/scope.js';
import { parseBearerChallenge } from '../../shared/www-authenticate.js';

/** A `fetch` as the MCP SDK's transports take it. */
export type ProxyFetch = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** What the proxy's fetch needs. */
export interface RemoteFetchOptions {
  credential: string;
  client: KeywardClient;
  /** Only this origin gets the token: the remote server's. */
  origin: string;
  /** Runs a login (for the wider scope when given) and resolves once it completed. */
  login(scope?: string): Promise<void>;
}

/** Returns the authorized `fetch` for the remote MCP server. */
export function remoteFetch(options: RemoteFetchOptions): ProxyFetch {
  const { credential, client } = options;
  const send = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    try {
      return await client.fetch(credential, input, init);
    } catch (err) {
      if (!(err instanceof KeywardError && err.code === 'LOGIN_REQUIRED')) throw err;
      await options.login();
      return client.fetch(credential, input, init);
    }
  };
  return async (input, init) => {
    const url = new URL(input instanceof URL ? input.href : input);
    // The SDK follows redirects within the origin only, and checks the SSE endpoint's origin;
    // this makes sure no path, now or later, hands the token to another host.
    if (url.origin !== options.origin) {
      throw new KeywardError(
        'FORBIDDEN',
        `keyward sends the token of "${credential}" only to ${options.origin}, not to ${url.origin}`,
      );
    }
    const response = await send(url, init);
    if (response.status !== 403) return response;
    const challenge = parseBearerChallenge(response.headers.get('www-authenticate'));
    if (challenge?.error !== 'insufficient_scope') return response;
    const granted = await client.getToken(credential).then(
      (token) => token.scope,
      () => null,
    );
    const required = scopeTokens(challenge.scope);
    const held = scopeTokens(granted);
    // A server that names no scope, or only scopes already held, cannot be helped by a login.
    if (required.length === 0 || required.every((s) => held.includes(s))) return response;
    await response.body?.cancel();
    await options.login(unionScopes(granted, required) ?? undefined);
    return send(url, init);
  };
}
