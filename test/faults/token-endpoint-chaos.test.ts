/**
 * Token-endpoint chaos: refreshes meet resets, 5xx, 429 with Retry-After, HTML error pages,
 * truncated JSON, a server that answers only after 30 s, and refusals. For each, with and without
 * a still-valid access token, 10 concurrent callers must get the right error class (or the old
 * token while it is valid) within a bounded time, share one upstream flight, and the daemon must
 * neither crash nor log an error; once the fault clears, every transient case recovers on its own.
 *
 * The chaos cases come from a hand-made endpoint (test/fixtures/chaos-server.ts); one case runs
 * against oidc-provider's own fault injection to show the retry path against a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywardClient, type KeywardError } from '../../client/index.js';
import { DEFAULT_TIMINGS } from '../../daemon/oauth/timings.js';
import { type ChaosMode, type ChaosServer, startChaosServer } from '../fixtures/chaos-server.js';
import { type OidcServer, startOidcServer } from '../fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  socketRequest,
  startDaemon,
  type TestHome,
} from '../helpers/daemon-process.js';
import {
  addOAuthCredential,
  credentialStatus,
  loginByRedirect,
  loginCredential,
} from './support/keyward-oauth.js';
import { recordFaultSummary } from './support/summary.js';

/** What callers must get. `old`: the access token they had before the fault. */
type Expect = 'old' | 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_ERROR' | 'LOGIN_REQUIRED';

interface ChaosCase {
  name: string;
  mode: ChaosMode;
  /** No valid access token left. */
  expired: Expect;
  /** A valid access token left (but less than callers asked for). */
  valid: Expect;
  /** The upstream requests 10 callers may cause, without a valid token. */
  maxRequests: number;
  /** Retry-After in ms the retries must honour. */
  spacingMs?: number;
}

const T = DEFAULT_TIMINGS;
const RETRIES = T.retryAttempts + 1;
const CASES: ChaosCase[] = [
  {
    name: 'reset',
    mode: { kind: 'reset' },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'status-500',
    mode: { kind: 'status', status: 500, body: { error: 'server_error' } },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'status-502',
    mode: { kind: 'status', status: 502, body: {} },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'status-503',
    mode: { kind: 'status', status: 503 },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'status-429-retry-1s',
    mode: { kind: 'status', status: 429, body: { error: 'rate_limited' }, retryAfter: '1' },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
    spacingMs: 1000,
  },
  {
    // Longer than the retry budget: give up at once instead of sleeping through it.
    name: 'status-429-retry-1h',
    mode: { kind: 'status', status: 429, retryAfter: '3600' },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: 1,
  },
  {
    name: 'html-502',
    mode: { kind: 'html', status: 502 },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'html-200',
    mode: { kind: 'html', status: 200 },
    expired: 'UPSTREAM_ERROR',
    valid: 'old',
    maxRequests: 1,
  },
  {
    name: 'truncated-json',
    mode: { kind: 'truncated' },
    expired: 'UPSTREAM_ERROR',
    valid: 'old',
    maxRequests: 1,
  },
  {
    name: 'hang-30s',
    mode: { kind: 'hang', ms: 30_000 },
    expired: 'UPSTREAM_UNAVAILABLE',
    valid: 'old',
    maxRequests: RETRIES,
  },
  {
    name: 'invalid-grant',
    mode: { kind: 'status', status: 400, body: { error: 'invalid_grant' } },
    expired: 'LOGIN_REQUIRED',
    valid: 'LOGIN_REQUIRED',
    maxRequests: 1,
  },
  {
    name: 'invalid-client',
    mode: { kind: 'status', status: 401, body: { error: 'invalid_client' } },
    expired: 'UPSTREAM_ERROR',
    valid: 'old',
    maxRequests: 1,
  },
];

const CALLERS = 10;
/** Lifetime of the tokens the "valid" credentials get: long enough to outlive a 10 s timeout at half-life. */
const VALID_TTL_S = 50;
const SLACK_MS = 3_000;
const FAILURE_DELAY_MS = 200;

/** The latency a caller may see. */
function latencyBound(c: ChaosCase, outcome: Expect, phase: 'expired' | 'valid'): number {
  const hangs = c.mode.kind === 'hang';
  if (outcome === 'UPSTREAM_ERROR' || outcome === 'LOGIN_REQUIRED') return SLACK_MS;
  if (phase === 'valid') return (hangs ? T.requestTimeoutMs : 0) + SLACK_MS;
  // Without a token: the retries, bounded by the budget plus one request in flight when it ran out.
  return hangs ? T.retryBudgetMs + T.requestTimeoutMs + SLACK_MS : T.retryBudgetMs + SLACK_MS;
}

interface CallerOutcome {
  got: string;
  ms: number;
}

/**
 * Fires 10 concurrent token requests, each on its own connection: the SDK's shared agent holds
 * at most 64 sockets, which would queue the callers of a dozen concurrent bursts in waves.
 */
async function burst(socket: string, name: string, old: string | undefined): Promise<CallerOutcome[]> {
  return Promise.all(
    Array.from({ length: CALLERS }, async () => {
      const started = performance.now();
      const res = await socketRequest(socket, 'POST', `/v1/credentials/${name}/token`, { body: {} });
      const ms = performance.now() - started;
      if (res.status === 200) return { got: res.body.access_token === old ? 'old' : 'new', ms };
      return { got: String(res.body?.error?.code ?? `HTTP ${res.status}`), ms };
    }),
  );
}

function assertOutcomes(c: ChaosCase, phase: 'expired' | 'valid', outcomes: CallerOutcome[]): void {
  const expected = c[phase];
  const bound = latencyBound(c, expected, phase);
  for (const o of outcomes) {
    assert.equal(o.got, expected, `${c.name} (${phase}): a caller got ${o.got}, expected ${expected}`);
    assert.ok(
      o.ms <= bound,
      `${c.name} (${phase}): a caller waited ${Math.round(o.ms)} ms (bound ${bound} ms)`,
    );
  }
}

const summary: Array<{ case: string; phase: string; outcome: string; maxMs: number; requests: number }> = [];

describe('token endpoint chaos', { timeout: 180_000 }, () => {
  let chaos: ChaosServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  let kw: KeywardClient;
  const oldTokens = new Map<string, string>();
  let loggedInAt = 0;

  before(async () => {
    chaos = await startChaosServer();
    home = makeHome({ KEYWARD_LOG_LEVEL: 'info' });
    daemon = await startDaemon(home);
    kw = new KeywardClient({ socketPath: home.socket });
    for (const c of CASES) {
      for (const phase of ['expired', 'valid'] as const) {
        const name = `${c.name}-${phase}`;
        const endpoints = chaos.endpoints(name, phase === 'valid' ? VALID_TTL_S : 1);
        const res = await socketRequest(home.socket, 'POST', '/v1/credentials', {
          body: { name, kind: 'oauth', client_id: 'chaos-client', scope: 'api:read', ...endpoints },
        });
        assert.equal(res.status, 201, res.text);
      }
    }
    loggedInAt = Date.now();
    await Promise.all(
      CASES.flatMap((c) =>
        ['expired', 'valid'].map((phase) => loginByRedirect(home.socket, `${c.name}-${phase}`)),
      ),
    );
    for (const c of CASES) oldTokens.set(c.name, (await kw.getToken(`${c.name}-valid`)).accessToken);
    for (const c of CASES) {
      // Each failure takes a moment, so all 10 callers of a burst are in flight together.
      const mode: ChaosMode = c.mode.kind === 'hang' ? c.mode : { ...c.mode, delayMs: FAILURE_DELAY_MS };
      chaos.setMode(`${c.name}-expired`, mode);
      chaos.setMode(`${c.name}-valid`, mode);
    }
  });

  after(async () => {
    await daemon?.stop();
    await chaos?.close();
    home?.cleanup();
  });

  test('with no valid token left, each fault gets its error class in bounded time, one flight for 10 callers', async () => {
    await sleep(1_200); // the 1-second tokens have expired
    await Promise.all(
      CASES.map(async (c) => {
        const name = `${c.name}-expired`;
        const outcomes = await burst(home.socket, name, undefined);
        const requests = chaos.requests(name).filter((r) => r.grantType === 'refresh_token');
        summary.push({
          case: c.name,
          phase: 'no valid token',
          outcome: outcomes[0]?.got ?? '',
          maxMs: Math.max(...outcomes.map((o) => o.ms)),
          requests: requests.length,
        });
        assertOutcomes(c, 'expired', outcomes);
        assert.ok(requests.length >= 1, `${c.name}: the refresh never reached the server`);
        assert.ok(
          requests.length <= c.maxRequests,
          `${c.name}: ${CALLERS} callers caused ${requests.length} upstream requests (at most ${c.maxRequests})`,
        );
        if (c.spacingMs !== undefined) {
          for (let i = 1; i < requests.length; i += 1) {
            const gap = (requests[i]?.at ?? 0) - (requests[i - 1]?.at ?? 0);
            assert.ok(gap >= c.spacingMs - 50, `${c.name}: retried after ${gap} ms despite Retry-After`);
          }
        }
        const status = await credentialStatus(home.socket, name);
        const expectedState = c.expired === 'LOGIN_REQUIRED' ? 'needs_login' : 'error';
        assert.equal(status?.state, expectedState, `${c.name}: status ${JSON.stringify(status)}`);
        if (c.expired !== 'LOGIN_REQUIRED') assert.equal(status?.last_error?.code, c.expired);
      }),
    );
  });

  const validBursts = new Map<string, { outcomes: CallerOutcome[]; requests: number }>();

  test('with a valid token left, callers get the old token while it is valid', async () => {
    // Wait until the valid tokens have less than half their life left: callers now need a refresh.
    const halfLife = loggedInAt + (VALID_TTL_S / 2) * 1000 + 500;
    await sleep(Math.max(0, halfLife - Date.now()));
    const started = Date.now();
    await Promise.all(
      CASES.map(async (c) => {
        const name = `${c.name}-valid`;
        const before = chaos.requests(name).length;
        const outcomes = await burst(home.socket, name, oldTokens.get(c.name));
        const requests = chaos.requests(name).length - before;
        validBursts.set(c.name, { outcomes, requests });
        summary.push({
          case: c.name,
          phase: 'valid token left',
          outcome: outcomes[0]?.got === 'old' ? 'old token served' : (outcomes[0]?.got ?? ''),
          maxMs: Math.max(...outcomes.map((o) => o.ms)),
          requests,
        });
        const expiresAt = loggedInAt + VALID_TTL_S * 1000;
        for (const o of outcomes) {
          if (o.got === c.valid) continue;
          // Past the old token's expiry, no valid token is left: then the no-token outcome is right.
          const answeredAt = started + o.ms;
          assert.ok(
            answeredAt > expiresAt - 1000 && o.got === c.expired,
            `${c.name} (valid): a caller got ${o.got} while the old token was still valid`,
          );
        }
        assert.equal(
          outcomes[0]?.got,
          c.valid,
          `${c.name} (valid): the first caller got ${outcomes[0]?.got}`,
        );
      }),
    );
  });

  test('with a valid token left, 10 callers share one upstream attempt and none waits more than one request timeout', () => {
    for (const c of CASES) {
      const burstResult = validBursts.get(c.name);
      assert.ok(burstResult !== undefined, `${c.name}: no burst ran`);
      // One attempt for the burst, plus at most one proactive refresh the scheduler ran meanwhile.
      assert.ok(
        burstResult.requests <= 2,
        `${c.name}: ${CALLERS} callers caused ${burstResult.requests} requests`,
      );
      const bound = latencyBound(c, c.valid, 'valid');
      for (const o of burstResult.outcomes) {
        assert.ok(
          o.ms <= bound,
          `${c.name} (valid): a caller waited ${Math.round(o.ms)} ms (bound ${bound} ms)`,
        );
      }
    }
  });

  test('once the fault clears every transient case recovers, and the daemon never crashed nor logged an error', async () => {
    for (const c of CASES) {
      chaos.setMode(`${c.name}-expired`, { kind: 'ok' });
      chaos.setMode(`${c.name}-valid`, { kind: 'ok' });
    }
    await Promise.all(
      CASES.filter((c) => c.expired !== 'LOGIN_REQUIRED').map(async (c) => {
        const name = `${c.name}-expired`;
        const requestsBefore = chaos.requests(name).length;
        // A credential that gave up waits out its backoff (or the server's Retry-After, capped here).
        const deadline = Date.now() + T.backoff.capMs + SLACK_MS;
        for (;;) {
          const outcome = await kw.getToken(name).then(
            (t) => t.accessToken,
            (err: KeywardError) => err.code,
          );
          if (outcome.startsWith('at-')) break;
          if (c.name === 'status-429-retry-1h') {
            // The server asked for an hour: keyward keeps its word and does not ask before then.
            assert.equal(outcome, 'UPSTREAM_UNAVAILABLE');
            assert.equal(
              chaos.requests(name).length,
              requestsBefore,
              'asked again despite Retry-After: 3600',
            );
            break;
          }
          assert.ok(Date.now() < deadline, `${c.name}: still ${outcome} after the fault cleared`);
          await sleep(250);
        }
      }),
    );
    const status = await credentialStatus(home.socket, 'invalid-grant-expired');
    assert.equal(status?.state, 'needs_login', 'a rejected grant stays rejected until the user logs in');
    assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
    assert.equal((await socketRequest(home.socket, 'GET', '/v1/health')).status, 200);
    const errors = daemon
      .output()
      .split('\n')
      .filter((line) => /"level":(50|60)/.test(line));
    assert.deepEqual(errors, [], 'the daemon logged errors');
  });

  test('oidc-provider: a 503 with Retry-After is retried after the delay, and one refresh succeeds', async (t) => {
    const server: OidcServer = await startOidcServer({ accessTokenTtl: 2 });
    t.after(() => server.close());
    await addOAuthCredential(home.socket, server, 'real-503');
    await loginCredential(home.socket, server, 'real-503');
    await sleep(2_200);
    server.resetEvents();
    server.injectTokenFailures(2, { status: 503, retryAfter: 1 });
    const outcomes = await burst(home.socket, 'real-503', undefined);
    for (const o of outcomes) {
      assert.equal(o.got, 'new');
      assert.ok(o.ms >= 1_900, `served after ${Math.round(o.ms)} ms, before two Retry-After delays`);
      assert.ok(o.ms <= 2_000 + 2 * T.backoff.baseMs + SLACK_MS, `served after ${Math.round(o.ms)} ms`);
    }
    assert.equal(server.events.tokenRequests, 3, 'two refused attempts and one that succeeded');
    assert.equal(server.events.grantSuccess.refresh_token, 1);
    assert.deepEqual(server.events.grantErrors, []);
    summary.push({
      case: 'oidc-provider 503 ×2, Retry-After: 1',
      phase: 'no valid token',
      outcome: 'refreshed',
      maxMs: Math.max(...outcomes.map((o) => o.ms)),
      requests: server.events.tokenRequests,
    });
  });

  after(() => {
    recordFaultSummary('chaos', {
      cases: summary.length,
      rows: summary.map((s) => ({ ...s, maxMs: Math.round(s.maxMs) })),
    });
  });
});
