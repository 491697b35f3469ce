/**
 * keyward's OAuth engine as the routes see it: registering credentials, serving and refreshing
 * tokens, running interactive logins, revoking, describing. It wires together the refresh engine,
 * the proactive scheduler, the flow registry and the two interactive grants, all sharing one
 * per-credential lock.
 */
import * as oauth from 'oauth4webapi';
import type { Logger } from 'pino';
import type {
  AddOAuthRequest,
  AuthorizationCodeLoginResponse,
  CredentialStatus,
  DeviceLoginResponse,
  FlowResponse,
  TokenResponse,
} from '../../shared/protocol.js';
import { unionScopes } from '../../shared/scope.js';
import { ApiError } from '../api-error.js';
import { KeyedMutex } from '../keyed-mutex.js';
import type { Secret } from '../secret.js';
import type { CredentialRecord, Vault } from '../vault/vault.js';
import { startAuthorizationCodeFlow } from './authorization-code-flow.js';
import { startDeviceFlow } from './device-flow.js';
import { FlowRegistry } from './flow-registry.js';
import { type LoginDeps, loginFailure } from './login-common.js';
import { prepareMcpCredential } from './mcp-discovery.js';
import {
  authorizationServer,
  clientAuthentication,
  type OAuthConfig,
  oauthClient,
  readOAuthConfig,
  readOAuthState,
  requireOAuthRecord,
  SECRET_FIELDS,
} from './oauth-config.js';
import { type PreparedCredential, prepareOAuthCredential } from './prepare.js';
import { RefreshEngine } from './refresh-engine.js';
import { RefreshScheduler } from './refresh-scheduler.js';
import { DEFAULT_TIMINGS, type OAuthTimings } from './timings.js';
import { callEndpoint, type UpstreamContext } from './upstream.js';

/** What the service needs; everything but the vault and logger has a production default. */
export interface OAuthServiceDeps {
  vault: Vault;
  log: Logger;
  fetch?: typeof fetch;
  /** Wall-clock time in epoch ms (tests shift it to play expiry and clock jumps). */
  now?: () => number;
  random?: () => number;
  timings?: Partial<OAuthTimings>;
}

/** The OAuth engine behind the socket API. */
export class OAuthService {
  readonly #vault: Vault;
  readonly #log: Logger;
  readonly #timings: OAuthTimings;
  readonly #upstream: UpstreamContext;
  readonly #locks = new KeyedMutex<string>();
  readonly #flows: FlowRegistry;
  readonly #scheduler: RefreshScheduler;
  readonly #engine: RefreshEngine;
  #closed = false;

  constructor(deps: OAuthServiceDeps) {
    this.#vault = deps.vault;
    this.#log = deps.log;
    this.#timings = { ...DEFAULT_TIMINGS, ...deps.timings };
    const now = deps.now ?? Date.now;
    const random = deps.random ?? Math.random;
    this.#upstream = {
      fetch: deps.fetch ?? globalThis.fetch,
      timeoutMs: this.#timings.requestTimeoutMs,
      now,
    };
    this.#flows = new FlowRegistry({ retentionMs: this.#timings.flowRetentionMs, now });
    this.#scheduler = new RefreshScheduler({
      now,
      random,
      tickMs: this.#timings.schedulerTickMs,
      clockJumpToleranceMs: this.#timings.clockJumpToleranceMs,
      retryBaseMs: this.#timings.backoff.baseMs,
      refresh: (name) => this.#engine.refreshProactively(name),
      log: deps.log,
    });
    this.#engine = new RefreshEngine({
      vault: deps.vault,
      log: deps.log,
      upstream: this.#upstream,
      locks: this.#locks,
      timings: this.#timings,
      random,
      scheduler: this.#scheduler,
    });
  }

  /** Validates an add request, runs discovery, and returns what the vault should store. */
  prepareCredential(req: AddOAuthRequest, clientSecret?: Secret): Promise<PreparedCredential> {
    // A remote MCP server names its authorization server itself (RFC 9728): see mcp-discovery.ts.
    if (req.mcp_server !== undefined) return prepareMcpCredential(this.#upstream, req, clientSecret);
    return prepareOAuthCredential(this.#upstream, req, clientSecret);
  }

  /** Returns a token with at least `min(minTtlS, lifetime/2)` seconds left (contract.md). */
  async getToken(name: string, minTtlS: number): Promise<TokenResponse> {
    this.#assertOpen();
    if (!Number.isFinite(minTtlS) || minTtlS < 0)
      throw new ApiError('INVALID_REQUEST', 'min_ttl must be a number >= 0');
    return this.#engine.getToken(name, minTtlS);
  }

  /** Refreshes when `accessToken` is the current token; otherwise returns the current one. */
  async invalidate(name: string, accessToken: string): Promise<TokenResponse> {
    this.#assertOpen();
    if (typeof accessToken !== 'string' || accessToken.length === 0) {
      throw new ApiError('INVALID_REQUEST', 'access_token must be a non-empty string');
    }
    return this.#engine.invalidate(name, accessToken);
  }

  /**
   * Starts an interactive login; its progress is read with `flowStatus`. `extraScope` widens it
   * (a step-up after a 403 `insufficient_scope`, RFC 6750 §3.1): the login asks for the
   * credential's scope plus those, and that union becomes the credential's scope only once the
   * login completes, so an abandoned step-up changes nothing.
   */
  async startLogin(
    name: string,
    flow: 'authorization_code' | 'device_code',
    extraScope?: string,
  ): Promise<AuthorizationCodeLoginResponse | DeviceLoginResponse> {
    this.#assertOpen();
    const record = this.#require(name);
    const stored = readOAuthConfig(record);
    // Without a configured scope the server chose one: keep what it granted when widening it.
    const scope = widenScope(stored.scope ?? readOAuthState(record).scope, extraScope);
    const config: OAuthConfig = { ...stored, scope };
    if (config.grant === 'client_credentials') {
      throw new ApiError(
        'INVALID_REQUEST',
        `credential "${name}" uses client credentials: it needs no login`,
      );
    }
    if (flow === 'authorization_code' && config.authorization_endpoint === null) {
      throw new ApiError(
        'INVALID_REQUEST',
        `credential "${name}" has no authorization endpoint: use keyward login ${name} --device`,
      );
    }
    if (flow === 'device_code' && config.device_authorization_endpoint === null) {
      throw new ApiError(
        'INVALID_REQUEST',
        `credential "${name}" has no device authorization endpoint: log in without --device`,
      );
    }
    const entry = this.#flows.begin(name, flow);
    const deps: LoginDeps = {
      name,
      config,
      clientSecret: () => this.#clientSecret(name, config),
      upstream: this.#upstream,
      log: this.#log,
      registry: this.#flows,
      flow: entry,
      commit: (tokens, sentAt) =>
        this.#commitLogin(name, config, tokens, sentAt, scope !== stored.scope ? scope : undefined),
    };
    try {
      if (flow === 'authorization_code') {
        const url = await startAuthorizationCodeFlow(deps, this.#timings.loginTimeoutMs);
        this.#log.info({ credential: name, flow }, 'login started');
        return { flow_id: entry.id, authorization_url: url };
      }
      const device = await startDeviceFlow(deps, this.#timings.deviceIntervalS);
      this.#log.info({ credential: name, flow }, 'login started');
      return { flow_id: entry.id, ...device };
    } catch (err) {
      const failure = loginFailure(name, err, config);
      this.#flows.fail(entry, failure.code, failure.message);
      throw new ApiError(failure.code, failure.message);
    }
  }

  /** Reports a flow's progress; NOT_FOUND for unknown flows. */
  flowStatus(flowId: string): FlowResponse {
    return this.#flows.status(flowId);
  }

  /**
   * Revokes the credential's grant at the server (RFC 7009) when it has a revocation endpoint:
   * the refresh token when there is one (which ends the grant), else the access token. Returns
   * true when the server confirmed; throws UPSTREAM_* when it could not. Pending logins are
   * cancelled either way; the tokens are dropped from the vault only once the server confirmed.
   */
  async revoke(name: string): Promise<boolean> {
    this.#assertOpen();
    this.#flows.cancelFor(name, `the credential "${name}" is being removed`);
    this.#scheduler.forget(name);
    return this.#locks.runExclusive(name, async () => {
      const record = this.#require(name);
      const config = readOAuthConfig(record);
      if (config.revocation_endpoint === null) return false;
      const refreshToken = this.#vault.readSecret(record, SECRET_FIELDS.refreshToken);
      const token = refreshToken ?? this.#vault.readSecret(record, SECRET_FIELDS.accessToken);
      if (token === undefined) return false;
      const hint = refreshToken !== undefined ? 'refresh_token' : 'access_token';
      const secret = this.#clientSecret(name, config);
      try {
        const as = authorizationServer(config);
        const client = oauthClient(config);
        const auth = clientAuthentication(config, secret);
        const value = token.reveal();
        await callEndpoint(
          this.#upstream,
          config,
          config.revocation_endpoint,
          `revoking the tokens of "${name}"`,
          (options) =>
            oauth.revocationRequest(as, client, auth, value, {
              ...options,
              additionalParameters: { token_type_hint: hint },
            }),
          (response) => oauth.processRevocationResponse(response),
        );
      } catch (err) {
        const failure = loginFailure(name, err);
        throw new ApiError(
          failure.code === 'LOGIN_REQUIRED' ? 'UPSTREAM_ERROR' : failure.code,
          failure.message,
        );
      } finally {
        token.wipe();
        secret?.wipe();
      }
      this.#vault.updateCredential(name, {
        state: { state: 'needs_login', expires_at: null, last_error: null },
        secrets: { [SECRET_FIELDS.accessToken]: null, [SECRET_FIELDS.refreshToken]: null },
      });
      this.#engine.reset(name);
      this.#log.info({ credential: name, token: hint }, 'tokens revoked');
      return true;
    });
  }

  /** Describes a credential for the status object, from its clear metadata alone. */
  describe(
    record: CredentialRecord,
  ): Pick<
    CredentialStatus,
    'state' | 'grant' | 'issuer' | 'scope' | 'expires_at' | 'last_refresh_at' | 'last_error'
  > {
    const state = readOAuthState(record);
    const c = record.config;
    const grant =
      c.grant === 'device_code' || c.grant === 'client_credentials' ? c.grant : 'authorization_code';
    // Null for explicit endpoints: no issuer identifier is known there.
    const issuer = typeof c.issuer === 'string' ? c.issuer : null;
    return {
      state: state.state,
      grant,
      issuer,
      scope: state.scope ?? (typeof c.scope === 'string' ? c.scope : null),
      expires_at: state.expires_at,
      last_refresh_at: state.last_refresh_at,
      last_error: state.last_error,
    };
  }

  /** Stops the scheduler and login listeners, and waits for in-flight refreshes to commit. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduler.close();
    this.#flows.close((name) => `the daemon stopped before the login finished: run: keyward login ${name}`);
    await this.#engine.close();
  }

  async #commitLogin(
    name: string,
    config: OAuthConfig,
    tokens: oauth.TokenEndpointResponse,
    sentAt: number,
    widenedScope: string | null | undefined,
  ): Promise<void> {
    await this.#locks.runExclusive(name, () => {
      const record = this.#require(name);
      // The credential may have been removed and re-added with other settings meanwhile.
      if (readOAuthConfig(record).client_id !== config.client_id) {
        throw new ApiError(
          'INVALID_REQUEST',
          `credential "${name}" changed while the login was running: log in again`,
        );
      }
      this.#engine.reset(name);
      this.#engine.commit(name, config, tokens, sentAt, 'login');
      // The step-up's scope is what later logins ask for too (clear config, like every scope).
      if (widenedScope !== undefined) this.#vault.updateCredential(name, { config: { scope: widenedScope } });
    });
  }

  #clientSecret(name: string, config: OAuthConfig): Secret | undefined {
    if (config.token_endpoint_auth_method === 'none') return undefined;
    const record = this.#require(name);
    return this.#vault.readSecret(record, SECRET_FIELDS.clientSecret);
  }

  #require(name: string): CredentialRecord {
    return requireOAuthRecord(this.#vault, name);
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new ApiError('UPSTREAM_UNAVAILABLE', 'the daemon is shutting down; try again in a moment');
  }
}

/** Returns `current` plus the scope-tokens of `extra` not in it (order kept), or `current` when there are none. */
function widenScope(current: string | null, extra: string | undefined): string | null {
  return unionScopes(current, extra) ?? current;
}
