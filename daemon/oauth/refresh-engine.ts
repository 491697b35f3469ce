/**
 * The refresh engine (architecture.md "Refresh engine"): serves access tokens from the vault,
 * refreshes them under the credential's lock, and commits the new access token, its expiry and
 * the rotated refresh token in one vault transaction before anyone sees the new token.
 *
 * Concurrency: callers that need a refresh share one in-flight refresh per credential (its result
 * or its failure), so N callers cause one request upstream even when it fails and is retried. The
 * refresh itself runs under the credential's KeyedMutex, which it shares with logins and
 * revocation, and re-reads the vault once the lock is held: a caller ahead may have refreshed.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oauth from 'oauth4webapi';
import type { Logger } from 'pino';
import { DEFAULT_MIN_TTL_S, type TokenResponse } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';
import type { KeyedMutex } from '../keyed-mutex.js';
import { Secret } from '../secret.js';
import type { CredentialRecord, Vault } from '../vault/vault.js';
import { backoffDelayMs } from './failure-class.js';
import {
  authorizationServer,
  clientAuthentication,
  type OAuthConfig,
  type OAuthState,
  oauthClient,
  readOAuthConfig,
  readOAuthState,
  requireOAuthRecord,
  SECRET_FIELDS,
} from './oauth-config.js';
import type { ProactiveOutcome, RefreshScheduler } from './refresh-scheduler.js';
import type { OAuthTimings } from './timings.js';
import { callTokenEndpoint, reportedTokenType, type UpstreamContext, UpstreamFailure } from './upstream.js';

/** Why a token is being fetched: decides whether the new token counts as in use. */
type Reason = 'expiring' | 'invalidated' | 'proactive';

/** What a caller will take: a token served as is, or after a refresh. */
interface Demand {
  reason: Reason;
  /** Returns the token to serve without refreshing, or undefined when a refresh is needed. */
  accept(record: CredentialRecord): TokenResponse | undefined;
  /** Returns a still-valid token to serve when a refresh fails transiently, or undefined. */
  fallback(record: CredentialRecord): TokenResponse | undefined;
}

/** A served token and how it was obtained. */
interface Outcome {
  token: TokenResponse;
  /** `current`: no refresh was needed; `fallback`: refreshing failed and a valid token was served. */
  via: 'current' | 'refresh' | 'fallback';
}

/** What the engine needs. */
export interface RefreshEngineDeps {
  vault: Vault;
  log: Logger;
  upstream: UpstreamContext;
  locks: KeyedMutex<string>;
  timings: OAuthTimings;
  random: () => number;
  scheduler: RefreshScheduler | undefined;
}

/** Serves and refreshes OAuth access tokens. */
export class RefreshEngine {
  readonly #deps: RefreshEngineDeps;
  readonly #inflight = new Map<string, Promise<Outcome>>();
  /** After retries ran out, no new upstream attempt before this time (epoch ms). */
  readonly #cooldown = new Map<string, number>();
  /**
   * After a transient failure while the old token was still valid, no new upstream attempt for
   * callers the old token satisfies before this time (epoch ms): N callers, one attempt.
   */
  readonly #holdOff = new Map<string, number>();
  /** When a reported-as-rejected token last made a refresh go upstream (epoch ms). */
  readonly #invalidatedAt = new Map<string, number>();
  readonly #stopping = new AbortController();

  constructor(deps: RefreshEngineDeps) {
    this.#deps = deps;
  }

  /** Returns a token with at least `min(minTtlS, lifetime/2)` seconds left, refreshing if needed. */
  async getToken(name: string, minTtlS: number): Promise<TokenResponse> {
    const record = this.#require(name);
    const demand = this.#tokenDemand(minTtlS);
    const served = demand.accept(record);
    this.#noteUse(name, record);
    return served ?? (await this.#obtain(name, demand)).token;
  }

  /**
   * Handles a client's report that `reported` was rejected: refreshes only when it is still the
   * current token (compared in constant time); a stale report gets the current token.
   */
  async invalidate(name: string, reported: string): Promise<TokenResponse> {
    const record = this.#require(name);
    const bad = Secret.fromString(reported);
    try {
      const demand = this.#invalidateDemand(bad);
      this.#noteUse(name, record);
      return demand.accept(record) ?? (await this.#obtain(name, demand)).token;
    } finally {
      bad.wipe();
    }
  }

  /** Refreshes a credential ahead of expiry; never throws (the scheduler's callback). */
  async refreshProactively(name: string): Promise<ProactiveOutcome> {
    try {
      if (this.#deps.vault.getCredential(name) === undefined) return 'stop';
      const outcome = await this.#obtain(name, this.#proactiveDemand());
      // A fallback token means the refresh failed transiently: try again later.
      return outcome.via === 'fallback' ? 'retry' : 'refreshed';
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'INTERNAL';
      return code === 'UPSTREAM_UNAVAILABLE' ? 'retry' : 'stop';
    }
  }

  /**
   * Commits tokens from a grant (a login, or a refresh) in one vault transaction and returns the
   * token object. Call with the credential's lock held.
   */
  commit(
    name: string,
    config: OAuthConfig,
    tokens: oauth.TokenEndpointResponse,
    sentAt: number,
    how: 'login' | Reason,
  ): TokenResponse {
    const lifetime = typeof tokens.expires_in === 'number' ? Math.max(0, tokens.expires_in) : null;
    // Expiry counts from when the request left, not when the answer came: never optimistic.
    const expiresAtMs = lifetime === null ? null : sentAt + lifetime * 1000;
    const expiresAt = expiresAtMs === null ? null : new Date(expiresAtMs).toISOString();
    const tokenType = reportedTokenType(config, tokens.token_type);
    // RFC 6749 §5.1: an omitted scope is the scope requested.
    const scope = typeof tokens.scope === 'string' && tokens.scope !== '' ? tokens.scope : config.scope;
    const access = Secret.fromString(tokens.access_token);
    const secrets: Record<string, Secret | null> = { [SECRET_FIELDS.accessToken]: access };
    let refresh: Secret | undefined;
    if (typeof tokens.refresh_token === 'string') {
      refresh = Secret.fromString(tokens.refresh_token);
      secrets[SECRET_FIELDS.refreshToken] = refresh;
    } else if (how === 'login') {
      // A new grant without a refresh token: the previous grant's one is dead or unrelated.
      secrets[SECRET_FIELDS.refreshToken] = null;
    } // A refresh without one keeps the old refresh token (Google does not rotate).
    const state: OAuthState = {
      state: 'ready',
      expires_at: expiresAt,
      last_refresh_at: new Date(sentAt).toISOString(),
      lifetime_s: lifetime,
      scope,
      token_type: tokenType,
      last_error: null,
    };
    try {
      this.#deps.vault.updateCredential(name, { state: { ...state }, secrets });
    } finally {
      access.wipe();
      refresh?.wipe();
    }
    this.#cooldown.delete(name);
    this.#holdOff.delete(name);
    const used = how === 'expiring' || how === 'invalidated';
    this.#deps.scheduler?.issued(name, sentAt, expiresAtMs, used);
    return { access_token: tokens.access_token, token_type: tokenType, expires_at: expiresAt, scope };
  }

  /** Clears a credential's retry state (after a login or removal). */
  reset(name: string): void {
    this.#cooldown.delete(name);
    this.#holdOff.delete(name);
    this.#invalidatedAt.delete(name);
  }

  /** Stops retry sleeps and waits for in-flight refreshes to commit or fail. */
  async close(): Promise<void> {
    this.#stopping.abort();
    await Promise.allSettled([...this.#inflight.values()]);
  }

  // --- demands ---------------------------------------------------------------------------

  #tokenDemand(minTtlS: number): Demand {
    return {
      reason: 'expiring',
      accept: (record) => this.#serve(record, (state) => this.#hasLife(state, minTtlS)),
      fallback: (record) => this.#serve(record, (state) => this.#hasLife(state, 0)),
    };
  }

  #invalidateDemand(bad: Secret): Demand {
    const other = (record: CredentialRecord, enough: (state: OAuthState) => boolean) =>
      this.#serve(record, enough, (token) => !token.equals(bad));
    return {
      reason: 'invalidated',
      accept: (record) => other(record, (state) => this.#hasLife(state, DEFAULT_MIN_TTL_S)),
      fallback: (record) => other(record, (state) => this.#hasLife(state, 0)),
    };
  }

  #proactiveDemand(): Demand {
    return {
      reason: 'proactive',
      // Someone refreshed since the timer was armed when half the lifetime or more is left.
      accept: (record) =>
        this.#serve(
          record,
          (state) => state.lifetime_s !== null && this.#hasLife(state, state.lifetime_s / 2, false),
        ),
      fallback: (record) => this.#serve(record, (state) => this.#hasLife(state, 0)),
    };
  }

  /** Tells whether the current token has `minTtlS` left, bounded by half its lifetime. */
  #hasLife(state: OAuthState, minTtlS: number, halfLifetimeCap = true): boolean {
    if (state.state === 'needs_login') return false;
    if (state.expires_at === null) return true; // No expiry known (Notion): valid until rejected.
    const remainingS = (Date.parse(state.expires_at) - this.#deps.upstream.now()) / 1000;
    const required =
      halfLifetimeCap && state.lifetime_s !== null ? Math.min(minTtlS, state.lifetime_s / 2) : minTtlS;
    return remainingS > 0 && remainingS >= required;
  }

  /** Returns the record's token when `enough` holds and `extra` accepts it. */
  #serve(
    record: CredentialRecord,
    enough: (state: OAuthState) => boolean,
    extra?: (token: Secret) => boolean,
  ): TokenResponse | undefined {
    const state = readOAuthState(record);
    if (!enough(state)) return undefined;
    const token = this.#deps.vault.readSecret(record, SECRET_FIELDS.accessToken);
    if (token === undefined) return undefined;
    try {
      if (extra !== undefined && !extra(token)) return undefined;
      return {
        access_token: token.reveal(),
        token_type: state.token_type,
        expires_at: state.expires_at,
        scope: state.scope,
      };
    } finally {
      token.wipe();
    }
  }

  // --- single flight ---------------------------------------------------------------------

  /** Joins the credential's in-flight refresh, or starts one. */
  async #obtain(name: string, demand: Demand): Promise<Outcome> {
    for (let round = 0; round < 2; round += 1) {
      const running = this.#inflight.get(name);
      if (running === undefined) break;
      // Its failure is ours too: N callers, one upstream attempt (and one retry sequence).
      await running;
      const served = demand.accept(this.#require(name));
      if (served !== undefined) return { token: served, via: 'current' };
    }
    if (this.#inflight.has(name)) {
      // Still not served after two flights (a pathological interleaving): queue on the lock,
      // where the re-read prevents a needless refresh.
      return this.#deps.locks.runExclusive(name, () => this.#refreshLocked(name, demand));
    }
    const flight: Promise<Outcome> = this.#deps.locks
      .runExclusive(name, () => this.#refreshLocked(name, demand))
      .finally(() => {
        if (this.#inflight.get(name) === flight) this.#inflight.delete(name);
      });
    this.#inflight.set(name, flight);
    return flight;
  }

  /** Refreshes with the lock held, retrying transient failures while no valid token is left. */
  async #refreshLocked(name: string, demand: Demand): Promise<Outcome> {
    const record = this.#require(name);
    const ready = demand.accept(record);
    if (ready !== undefined) return { token: ready, via: 'current' };
    const config = readOAuthConfig(record);
    const { log, timings } = this.#deps;
    const started = performance.now();

    if (demand.reason === 'invalidated') {
      // Reports of the current token are the callers' to send, as many as they like: at most one
      // of them per window goes upstream, the rest get the current token while it lasts.
      const now = this.#deps.upstream.now();
      const last = this.#invalidatedAt.get(name);
      if (last !== undefined && now - last < timings.invalidateWindowMs) {
        const current = this.#serve(record, (state) => this.#hasLife(state, 0));
        if (current !== undefined) {
          log.debug({ credential: name }, 'invalidate within the window: serving the current token');
          return { token: current, via: 'current' };
        }
      }
      this.#invalidatedAt.set(name, now);
    }

    if ((this.#holdOff.get(name) ?? 0) > this.#deps.upstream.now()) {
      const fallback = demand.fallback(record);
      if (fallback !== undefined) return { token: fallback, via: 'fallback' };
    }
    const cooldownUntil = this.#cooldown.get(name) ?? 0;
    if (cooldownUntil > this.#deps.upstream.now()) {
      const fallback = demand.fallback(record);
      if (fallback !== undefined) return { token: fallback, via: 'fallback' };
      const waitS = Math.ceil((cooldownUntil - this.#deps.upstream.now()) / 1000);
      throw new ApiError(
        'UPSTREAM_UNAVAILABLE',
        `the authorization server of "${name}" kept failing; keyward retries in ${waitS} s (see keyward status)`,
      );
    }

    for (let attempt = 0; ; attempt += 1) {
      try {
        const { tokens, sentAt } = await this.#requestTokens(name, config, record);
        const result = this.commit(name, config, tokens, sentAt, demand.reason);
        log.info(
          { credential: name, reason: demand.reason, attempts: attempt + 1, duration_ms: elapsed(started) },
          'token refreshed',
        );
        return { token: result, via: 'refresh' };
      } catch (err) {
        if (!(err instanceof UpstreamFailure)) throw err;
        const current = this.#require(name);
        const fallback = demand.fallback(current);
        if (err.failureClass === 'login_required') {
          this.#markNeedsLogin(name, err);
          log.warn(
            { credential: name, outcome: 'login_required', oauth_error: err.oauthError },
            'refresh rejected',
          );
          throw loginRequired(
            name,
            `the authorization server rejected the refresh token (${err.oauthError ?? `HTTP ${err.status}`})`,
          );
        }
        if (err.failureClass === 'upstream_error') {
          this.#recordError(name, 'UPSTREAM_ERROR', err.message, fallback !== undefined);
          log.warn({ credential: name, outcome: 'upstream_error', status: err.status }, 'refresh failed');
          if (fallback !== undefined) {
            this.#holdOff.set(
              name,
              this.#deps.upstream.now() +
                backoffDelayMs(attempt, timings.backoff, undefined, this.#deps.random),
            );
            return { token: fallback, via: 'fallback' };
          }
          throw new ApiError(
            'UPSTREAM_ERROR',
            `${err.message}; check the credential's registration (client id, secret, endpoints)`,
          );
        }
        const delay = backoffDelayMs(attempt, timings.backoff, err.retryAfterMs, this.#deps.random);
        if (fallback !== undefined) {
          // The old token is still valid: serve it now, to this caller and to those queued
          // behind it until the backoff has passed, and let the scheduler retry later.
          this.#holdOff.set(name, this.#deps.upstream.now() + delay);
          this.#recordError(name, 'UPSTREAM_UNAVAILABLE', err.message, true);
          log.warn(
            { credential: name, outcome: 'transient', status: err.status },
            'refresh failed; serving the current token',
          );
          return { token: fallback, via: 'fallback' };
        }
        const outOfTime = performance.now() - started + delay > timings.retryBudgetMs;
        if (attempt >= timings.retryAttempts || outOfTime || this.#stopping.signal.aborted) {
          this.#recordError(name, 'UPSTREAM_UNAVAILABLE', err.message, false);
          this.#cooldown.set(name, this.#deps.upstream.now() + delay);
          log.warn(
            {
              credential: name,
              outcome: 'unavailable',
              attempts: attempt + 1,
              duration_ms: elapsed(started),
            },
            'refresh failed; giving up for now',
          );
          throw new ApiError(
            'UPSTREAM_UNAVAILABLE',
            `${err.message} after ${attempt + 1} attempts and no valid token is left; try again later`,
          );
        }
        log.info(
          { credential: name, attempt: attempt + 1, retry_in_ms: delay },
          'refresh failed transiently; retrying',
        );
        try {
          await sleep(delay, undefined, { signal: this.#stopping.signal });
        } catch {
          // Shutting down: the next loop turn gives up.
        }
      }
    }
  }

  /** Runs one grant request: refresh_token, or client_credentials for credentials of that grant. */
  async #requestTokens(
    name: string,
    config: OAuthConfig,
    record: CredentialRecord,
  ): Promise<{ tokens: oauth.TokenEndpointResponse; sentAt: number }> {
    const { vault, upstream } = this.#deps;
    const as = authorizationServer(config);
    const client = oauthClient(config);
    const secret =
      config.token_endpoint_auth_method === 'none'
        ? undefined
        : vault.readSecret(record, SECRET_FIELDS.clientSecret);
    const sentAt = upstream.now();
    try {
      const auth = clientAuthentication(config, secret);
      if (config.grant === 'client_credentials') {
        const params = new URLSearchParams();
        if (config.scope !== null) params.set('scope', config.scope);
        if (config.resource !== null) params.set('resource', config.resource);
        const tokens = await callTokenEndpoint(
          upstream,
          config,
          `the token request for "${name}"`,
          (options) => oauth.clientCredentialsGrantRequest(as, client, auth, params, options),
          (response, options) => oauth.processClientCredentialsResponse(as, client, response, options),
        );
        return { tokens, sentAt };
      }
      const refreshToken = vault.readSecret(record, SECRET_FIELDS.refreshToken);
      if (refreshToken === undefined) throw this.#noGrant(name, record);
      try {
        const value = refreshToken.reveal();
        const additionalParameters = config.resource !== null ? { resource: config.resource } : undefined;
        const tokens = await callTokenEndpoint(
          upstream,
          config,
          `refreshing "${name}"`,
          (options) =>
            oauth.refreshTokenGrantRequest(as, client, auth, value, { ...options, additionalParameters }),
          (response, options) => oauth.processRefreshTokenResponse(as, client, response, options),
        );
        return { tokens, sentAt };
      } finally {
        refreshToken.wipe();
      }
    } finally {
      secret?.wipe();
    }
  }

  /** The LOGIN_REQUIRED for a credential that has no refresh token. */
  #noGrant(name: string, record: CredentialRecord): ApiError {
    const state = readOAuthState(record);
    if (state.last_error?.code === 'LOGIN_REQUIRED') return loginRequired(name, state.last_error.message);
    if (state.last_refresh_at === null)
      return loginRequired(name, `credential "${name}" has never been logged in`);
    return loginRequired(name, `the token of "${name}" was rejected and no refresh token is stored`);
  }

  #markNeedsLogin(name: string, failure: UpstreamFailure): void {
    const reason = failure.oauthError ?? `HTTP ${failure.status}`;
    this.#deps.vault.updateCredential(name, {
      state: {
        state: 'needs_login',
        last_error: {
          code: 'LOGIN_REQUIRED',
          message: `the authorization server rejected the refresh token (${reason}): run: keyward login ${name}`,
          at: new Date(this.#deps.upstream.now()).toISOString(),
        },
      },
      // The grant is gone: its tokens are useless, and a dead refresh token must not be retried.
      secrets: { [SECRET_FIELDS.accessToken]: null, [SECRET_FIELDS.refreshToken]: null },
    });
    this.#deps.scheduler?.forget(name);
  }

  #recordError(name: string, code: string, message: string, tokenStillValid: boolean): void {
    this.#deps.vault.updateCredential(name, {
      state: {
        state: tokenStillValid ? 'ready' : 'error',
        last_error: { code, message, at: new Date(this.#deps.upstream.now()).toISOString() },
      },
    });
  }

  #noteUse(name: string, record: CredentialRecord): void {
    const scheduler = this.#deps.scheduler;
    if (scheduler === undefined) return;
    const state = readOAuthState(record);
    if (state.state === 'needs_login' || state.expires_at === null || state.lifetime_s === null) return;
    const expiresAt = Date.parse(state.expires_at);
    // An expired token is refreshed on demand; there is nothing to refresh ahead of.
    if (!(expiresAt > this.#deps.upstream.now())) return;
    scheduler.used(name, { issuedAt: expiresAt - state.lifetime_s * 1000, expiresAt });
  }

  #require(name: string): CredentialRecord {
    return requireOAuthRecord(this.#deps.vault, name);
  }
}

/** Builds the LOGIN_REQUIRED error with the command to run. */
export function loginRequired(name: string, why: string): ApiError {
  const sentence = why.includes('run: keyward login') ? why : `${why}: run: keyward login ${name}`;
  return new ApiError('LOGIN_REQUIRED', sentence);
}

function elapsed(startedMono: number): number {
  return Math.round(performance.now() - startedMono);
}
