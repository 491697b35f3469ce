/**
 * keyward for MCP clients and servers (`keyward/mcp`). Loads nothing at run time beyond
 * `keyward/client`: the MCP SDK (an optional peer dependency) is imported for its types only.
 *
 * The daemon is the only refresher. The SDK refreshes by itself when `tokens()` hands it a
 * refresh token, and two refreshers racing on one rotating refresh token get the whole grant
 * revoked; so nothing here ever sees a refresh token.
 *
 *   const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: keywardFetch('linear') });
 */
import type { OAuthClientProvider, OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { resolvePaths } from '../shared/paths.js';
import type { AuthorizationCodeLoginResponse, FlowResponse, LoginRequest } from '../shared/protocol.js';
import { scopeTokens, unionScopes } from '../shared/scope.js';
import { shellQuote, shellWord } from '../shared/shell-quote.js';
import { parseBearerChallenge } from '../shared/www-authenticate.js';
import { KeywardError } from './errors.js';
import { type AccessToken, KeywardClient, type KeywardClientOptions } from './index.js';
import { requestJson, type TransportOptions } from './transport.js';

export { KeywardClient, KeywardError } from './index.js';

/** A `fetch` as the MCP SDK's transports take it. */
export type KeywardFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of `keywardFetch`. */
export interface KeywardFetchOptions {
  /** The daemon connection; default `new KeywardClient()` (`KEYWARD_SOCKET`, `KEYWARD_CLIENT_TOKEN`). */
  client?: KeywardClient;
}

/**
 * Returns a `fetch` for `StreamableHTTPClientTransport`'s `fetch` option (use it without an
 * `authProvider`): every request carries `Authorization: Bearer <token>` from keyward, and a 401
 * reports the token to the daemon (which refreshes once however many callers report it) and is
 * retried once with the fresh token. Send it only to the server the credential is for.
 *
 * A 403 `insufficient_scope` (RFC 6750 §3.1) is not retried: no refresh widens a grant, only a
 * login does, and that needs the user. It throws `KeywardError('LOGIN_REQUIRED')` whose message is
 * the command to run: `keyward login <credential> --scope '<granted and required scopes>'`. The
 * scope comes from the server, so it is single-quoted for a POSIX shell (`shellQuote`): pasting
 * the command runs `keyward login` and nothing else, whatever the server put in its challenge.
 */
export function keywardFetch(credential: string, options: KeywardFetchOptions = {}): KeywardFetch {
  const client = options.client ?? new KeywardClient();
  return async (input, init) => {
    const response = await client.fetch(credential, input, init);
    if (response.status !== 403) return response;
    const challenge = parseBearerChallenge(response.headers.get('www-authenticate'));
    if (challenge?.error !== 'insufficient_scope') return response;
    await response.body?.cancel();
    const required = challenge.scope?.trim() ?? '';
    // What the credential holds now, so that the step-up keeps it (a server may name only the missing scope).
    const granted = await client.getToken(credential).then(
      (token) => token.scope,
      () => null,
    );
    if (required === '') {
      throw new KeywardError(
        'LOGIN_REQUIRED',
        `the server needs a scope the token of "${credential}" lacks, and did not say which: ` +
          `run: keyward login ${shellWord(credential)} --scope '<the scope it needs>'`,
      );
    }
    throw new KeywardError(
      'LOGIN_REQUIRED',
      `the server needs scope ${JSON.stringify(required)}: run: keyward login ${shellWord(credential)} --scope ${shellQuote(unionScope(granted, required))}`,
    );
  };
}

/** Options of `KeywardOAuthProvider`. */
export interface KeywardOAuthProviderOptions extends KeywardClientOptions {
  /**
   * Shows the user the daemon's authorization URL when a login is needed. Default: one line on
   * stderr. The daemon receives the redirect itself, so there is no code to hand back.
   */
  onAuthorizationUrl?: (url: URL) => void | Promise<void>;
  /** How often `waitForAuthorization` asks the daemon about the login, in ms (default 500). */
  pollMs?: number;
}

/** The redirect URI of the daemon's loopback listener; its port is chosen per login (RFC 8252 §7.3). */
const DAEMON_REDIRECT_URI = 'http://127.0.0.1/callback';

/**
 * The MCP SDK's `OAuthClientProvider`, backed by the keyward daemon, for hosts that want a
 * provider rather than `keywardFetch`:
 * - `tokens()` is the daemon's current access token, never with a refresh token, so the SDK
 *   never refreshes on its own;
 * - `redirectToAuthorization` hands the login to the daemon: it first reports the rejected token
 *   (the daemon may simply refresh it), and only when the daemon has no usable grant starts the
 *   daemon's authorization code flow and shows its URL. When the SDK asks for scopes the current
 *   token was not granted (its answer to a 403 `insufficient_scope`), it starts the daemon's login
 *   for the wider scope instead (a step-up). After the SDK's `UnauthorizedError`, call
 *   `waitForAuthorization()` and connect (or call) again; `finishAuth(code)` is not used.
 *
 * The SDK runs discovery and builds an authorization URL of its own before it calls
 * `redirectToAuthorization`; that URL is never opened, so what the SDK wants kept for it is not
 * kept in the vault, because it is never used. The client the SDK is shown is a stand-in (so
 * that it does not register a client of its own), its PKCE verifier is dropped, and its discovery
 * results stay in this object's memory (public metadata that spares it discovering again). The
 * registration, the PKCE verifier and the discovery results that count are the daemon's own: in
 * the vault and, for the verifier, in the daemon's memory for the one login it belongs to.
 */
export class KeywardOAuthProvider implements OAuthClientProvider {
  readonly credential: string;
  readonly #client: KeywardClient;
  readonly #transport: TransportOptions;
  readonly #onAuthorizationUrl: (url: URL) => void | Promise<void>;
  readonly #pollMs: number;
  #lastToken: string | undefined;
  /** The scope granted with `#lastToken`, when the daemon knows it. */
  #lastScope: string | null = null;
  #flowId: string | undefined;
  #discovery: OAuthDiscoveryState | undefined;

  constructor(credential: string, options: KeywardOAuthProviderOptions = {}) {
    this.credential = credential;
    this.#client = new KeywardClient(options);
    const envToken = process.env.KEYWARD_CLIENT_TOKEN;
    this.#transport = {
      socketPath: options.socketPath ?? resolvePaths().socket,
      bearer: options.clientToken ?? (envToken === '' ? undefined : envToken),
      timeoutMs: options.timeoutMs ?? 60_000,
    };
    this.#onAuthorizationUrl =
      options.onAuthorizationUrl ??
      ((url) => {
        process.stderr.write(`keyward: open this URL to log in "${credential}": ${url.href}\n`);
      });
    this.#pollMs = options.pollMs ?? 500;
  }

  /** The daemon's loopback redirect URI (the SDK needs one to run an interactive flow). */
  get redirectUrl(): string {
    return DAEMON_REDIRECT_URI;
  }

  /** What a native public client registers (the daemon's own registration uses the same). */
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'keyward',
      redirect_uris: [DAEMON_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  /**
   * Returns a stand-in client, which only ever ends up in the SDK's unused authorization URL: the
   * daemon holds the real registration and runs every flow with it. (Without one, and with no
   * `saveClientInformation`, the SDK would try to register a client of its own.)
   */
  clientInformation(): OAuthClientInformationMixed {
    return { client_id: `keyward:${this.credential}` };
  }

  /** Returns the daemon's current access token, without a refresh token; undefined when a login is needed. */
  async tokens(): Promise<OAuthTokens | undefined> {
    let token: AccessToken;
    try {
      token = await this.#client.getToken(this.credential);
    } catch (err) {
      if (err instanceof KeywardError && err.code === 'LOGIN_REQUIRED') return undefined;
      throw err;
    }
    this.#lastToken = token.accessToken;
    this.#lastScope = token.scope;
    return toOAuthTokens(token);
  }

  /** Refuses: tokens come from the daemon only, and a refresh token must never be kept here. */
  saveTokens(_tokens: OAuthTokens): void {
    throw new KeywardError(
      'INVALID_REQUEST',
      `tokens for "${this.credential}" are obtained by the keyward daemon, not the MCP SDK; ` +
        `log in with: keyward login ${this.credential}`,
    );
  }

  /**
   * Hands the login to the daemon (see the class comment). Of the SDK's URL only `scope` is read:
   * scopes in it that the current token lacks make this a step-up.
   */
  async redirectToAuthorization(sdkAuthorizationUrl: URL): Promise<void> {
    this.#flowId = undefined;
    const stepUp = this.#stepUpScope(sdkAuthorizationUrl.searchParams.get('scope'));
    const rejected = this.#lastToken;
    if (stepUp === undefined && rejected !== undefined) {
      try {
        const fresh = await this.#client.invalidate(this.credential, rejected);
        this.#lastToken = fresh.accessToken;
        this.#lastScope = fresh.scope;
        // The daemon refreshed: the next request carries the new token, no login needed.
        if (fresh.accessToken !== rejected) return;
      } catch (err) {
        if (!(err instanceof KeywardError && err.code === 'LOGIN_REQUIRED')) throw err;
      }
    }
    const request: LoginRequest =
      stepUp === undefined ? { flow: 'authorization_code' } : { flow: 'authorization_code', scope: stepUp };
    let flow: AuthorizationCodeLoginResponse;
    try {
      flow = await requestJson<AuthorizationCodeLoginResponse>(
        this.#transport,
        'POST',
        `/credentials/${encodeURIComponent(this.credential)}/login`,
        request,
      );
    } catch (err) {
      if (err instanceof KeywardError && (err.code === 'FORBIDDEN' || err.code === 'UNAUTHENTICATED')) {
        const scope = stepUp === undefined ? '' : ` --scope ${shellQuote(stepUp)}`;
        throw new KeywardError(
          'LOGIN_REQUIRED',
          `credential "${this.credential}" needs a login, which this client may not start: run: keyward login ${shellWord(this.credential)}${scope}`,
          { cause: err },
        );
      }
      throw err;
    }
    this.#flowId = flow.flow_id;
    await this.#onAuthorizationUrl(new URL(flow.authorization_url));
  }

  /** Resolves once the login started by `redirectToAuthorization` is complete (at once if none was needed). */
  async waitForAuthorization(): Promise<void> {
    const flowId = this.#flowId;
    if (flowId === undefined) return;
    for (;;) {
      const flow = await requestJson<FlowResponse>(
        this.#transport,
        'GET',
        `/flows/${encodeURIComponent(flowId)}`,
      );
      if (flow.state === 'complete') {
        this.#flowId = undefined;
        return;
      }
      if (flow.state === 'failed') {
        this.#flowId = undefined;
        throw new KeywardError(
          'LOGIN_REQUIRED',
          `the login of "${this.credential}" failed: ${flow.error?.message ?? 'no reason given'}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, this.#pollMs));
    }
  }

  /** Drops the SDK's PKCE verifier: it belongs to an authorization URL that is never opened. */
  saveCodeVerifier(_codeVerifier: string): void {}

  /**
   * Refuses: only `transport.finishAuth(code)` asks for it, and with keyward the daemon receives
   * the redirect and exchanges the code itself, so there is no code to finish with.
   */
  codeVerifier(): string {
    throw new KeywardError(
      'INVALID_REQUEST',
      `the keyward daemon completes the login of "${this.credential}" itself: ` +
        'call waitForAuthorization() instead of finishAuth(), then connect again',
    );
  }

  /** Keeps the SDK's discovery results for this process, sparing it repeated discovery. */
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.#discovery = state;
  }

  /** Returns the SDK's discovery results. */
  discoveryState(): OAuthDiscoveryState | undefined {
    return this.#discovery;
  }

  /** Reports the last token as rejected when the SDK drops tokens; forgets discovery when asked. */
  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    if (scope === 'all' || scope === 'discovery') this.#discovery = undefined;
    if ((scope === 'all' || scope === 'tokens') && this.#lastToken !== undefined) {
      try {
        const fresh = await this.#client.invalidate(this.credential, this.#lastToken);
        this.#lastToken = fresh.accessToken;
        this.#lastScope = fresh.scope;
      } catch (err) {
        if (!(err instanceof KeywardError && err.code === 'LOGIN_REQUIRED')) throw err;
      }
    }
  }

  /**
   * Returns the scope to step up to when the SDK asks for scopes the current token was not
   * granted (after a 403 `insufficient_scope` it asks for the challenge's `scope`), else undefined.
   * A 401 whose challenge names no scope makes the SDK ask for the metadata's whole
   * `scopes_supported` (MCP SEP-835): for a credential narrowed with `--scope`, that too reads as a
   * step-up, and a login for the wider scope replaces the refresh. The rule stays this simple on
   * purpose: the SDK does not say which status it met, and a step-up whose 403 names every scope
   * the server has must not be mistaken for a rejected token.
   */
  #stepUpScope(requested: string | null): string | undefined {
    if (requested === null || this.#lastToken === undefined || this.#lastScope === null) return undefined;
    const granted = scopeTokens(this.#lastScope);
    if (scopeTokens(requested).every((s) => granted.includes(s))) return undefined;
    return unionScope(this.#lastScope, requested);
  }
}

/** Returns `granted` plus the scopes of `required` not in it, space-separated (order kept). */
function unionScope(granted: string | null, required: string): string {
  return unionScopes(granted, required) ?? '';
}

function toOAuthTokens(token: AccessToken): OAuthTokens {
  const tokens: OAuthTokens = { access_token: token.accessToken, token_type: token.tokenType };
  if (token.expiresAt !== null) {
    tokens.expires_in = Math.max(0, Math.floor((token.expiresAt.getTime() - Date.now()) / 1000));
  }
  if (token.scope !== null) tokens.scope = token.scope;
  return tokens;
}
