/**
 * Every delay and limit of the OAuth engine in one place, so tests (and the daemon's own
 * integration tests) can shrink them without sleeping through production values.
 */
import type { BackoffPolicy } from './failure-class.js';

/** Timeouts, retry policy and scheduler cadence. */
export interface OAuthTimings {
  /** Timeout of each HTTP request to an authorization server (AbortSignal). */
  requestTimeoutMs: number;
  /** Retries after the first attempt when a refresh fails transiently and no valid token is left. */
  retryAttempts: number;
  backoff: BackoffPolicy;
  /** A refresh gives up (UPSTREAM_UNAVAILABLE) rather than retry past this much time. */
  retryBudgetMs: number;
  /** How long a loopback redirect listener waits for the browser. */
  loginTimeoutMs: number;
  /** How long a finished flow's outcome stays readable through `GET /v1/flows/{id}`. */
  flowRetentionMs: number;
  /** Device grant polling interval when the server names none (RFC 8628 §3.2: 5 s). */
  deviceIntervalS: number;
  /** How often the proactive scheduler checks for clock jumps and overdue refreshes. */
  schedulerTickMs: number;
  /** Wall-clock drift against the monotonic clock beyond which timers are re-armed. */
  clockJumpToleranceMs: number;
  /**
   * A report that the current token was rejected refreshes it at most once per this window per
   * credential (contract.md "Security (v2)"): callers cannot drive the upstream's load.
   */
  invalidateWindowMs: number;
}

/** Production values. */
export const DEFAULT_TIMINGS: Readonly<OAuthTimings> = {
  requestTimeoutMs: 10_000,
  retryAttempts: 3,
  backoff: { baseMs: 500, capMs: 8_000 },
  retryBudgetMs: 20_000,
  loginTimeoutMs: 5 * 60_000,
  flowRetentionMs: 10 * 60_000,
  deviceIntervalS: 5,
  schedulerTickMs: 30_000,
  clockJumpToleranceMs: 5_000,
  invalidateWindowMs: 10_000,
};
