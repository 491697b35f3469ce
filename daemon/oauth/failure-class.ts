/**
 * What a failed token-endpoint call means for the credential. Pure and table-driven so the policy
 * reads as data and is tested as data (test/oauth-failure-class.test.ts):
 *
 * - `login_required`: the grant is gone (`invalid_grant` and each provider's equivalent). Retrying
 *   cannot help; the user must log in again.
 * - `transient`: the network, a 5xx, a 429 or `temporarily_unavailable`. Retry with backoff while
 *   the old access token keeps being served.
 * - `upstream_error`: the server answered with something unusable or rejected our registration
 *   (a bad client secret will not heal by retrying, and logging in again will not fix it).
 */
import { PROVIDERS, type ProviderName } from './providers.js';

/** The three outcomes of a failed call. */
export type FailureClass = 'login_required' | 'transient' | 'upstream_error';

/** What was observed: no answer at all, an HTTP answer, or an answer that made no sense. */
export type FailureInput =
  | { kind: 'network' }
  | { kind: 'timeout' }
  | { kind: 'malformed' }
  | {
      kind: 'http';
      status: number;
      /** The OAuth `error` code when the body carried one (RFC 6749 §5.2), even on HTTP 200. */
      error?: string;
      provider?: ProviderName | null;
    };

/** `error` codes that mean the grant itself is dead, for every server (RFC 6749 §5.2). */
const LOGIN_ERRORS: ReadonlySet<string> = new Set(['invalid_grant']);

/** Codes that say "try again later" (RFC 6749 §4.1.2.1 borrowed by many token endpoints). */
const TRANSIENT_ERRORS: ReadonlySet<string> = new Set([
  'temporarily_unavailable',
  'server_error',
  'ratelimited', // Slack
  'rate_limited',
  'slow_down',
]);

/** Classifies one failed call. */
export function classifyFailure(input: FailureInput): FailureClass {
  switch (input.kind) {
    case 'network':
    case 'timeout':
      return 'transient';
    case 'malformed':
      return 'upstream_error';
    case 'http':
      return classifyHttp(input.status, input.error, input.provider ?? null);
  }
}

function classifyHttp(
  status: number,
  error: string | undefined,
  provider: ProviderName | null,
): FailureClass {
  // The status decides first for server-side trouble: a 503 is transient whatever its body says.
  if (status >= 500 || status === 429 || status === 408) return 'transient';
  if (error !== undefined) {
    if (LOGIN_ERRORS.has(error)) return 'login_required';
    // Each provider's equivalents of invalid_grant live in its preset (providers.ts).
    if (provider !== null && PROVIDERS[provider].loginErrors.includes(error)) return 'login_required';
    if (TRANSIENT_ERRORS.has(error)) return 'transient';
    return 'upstream_error';
  }
  // Atlassian rejects a dead refresh token with a bare 403 as well as a 403 `invalid_grant`.
  if (provider !== null && PROVIDERS[provider].loginStatuses.includes(status)) return 'login_required';
  return 'upstream_error';
}

/** Parses `Retry-After` (delta-seconds or an HTTP-date, RFC 9110 §10.2.3) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP-date always names a day or month; without that, Date.parse accepts "-5" as a year.
  if (!/[a-z]{3}/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** How retries back off. */
export interface BackoffPolicy {
  /** First delay before jitter, in ms. */
  baseMs: number;
  /** Largest delay before jitter, in ms. */
  capMs: number;
}

/**
 * Returns the delay before retry number `attempt` (0-based): exponential, capped, with jitter in
 * [50%, 100%] so many daemons do not retry in lockstep; a server's `Retry-After` wins when longer.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt));
  const jittered = Math.round(exponential * (0.5 + random() * 0.5));
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}
