/**
 * Section 2: token latency while 5-second access tokens are refreshed continuously, beside the
 * same load on a credential whose token stays cached (a 1-hour token from another fixture
 * server). Proactive refresh should keep the authorization server's round trip away from
 * callers: the target is a p99 within 2× the cached p99.
 *
 * Two load shapes: closed loops at 1 and 50 in flight (every call counts, so a refresh every
 * 2.5 s touches a tiny share of calls), and one caller asking ten times a second, as an MCP
 * server does, where each refresh a caller waits for is 1 call in 25. The paced runs also use a
 * fixture server that holds every token request 200 ms, as a distant authorization server would.
 * The fixture servers run in their own processes, off the load generator's event loop.
 */
import { KeywardClient } from '../client/index.js';
import { addOAuthCredential, loginCredential } from '../test/faults/support/keyward-oauth.js';
import { refreshesByReason } from './daemon-log.js';
import { startBenchDaemon } from './keyward-process.js';
import { closedLoop, type LoadResult } from './load.js';
import { type OidcProcess, startOidcProcess } from './oidc-process.js';
import { type SectionReport, type TargetOutcome, table } from './report.js';
import { fmtInt, fmtRatio, fmtUs } from './stats.js';

/** How long each run lasts. */
export interface RefreshLatencyOptions {
  cachedMs: number;
  refreshingMs: number;
  pacedMs: number;
  warmupMs: number;
  tokenTtlS: number;
  /** The round trip added by the distant fixture server. */
  distantDelayMs: number;
}

type Credential = 'cached' | 'refreshing' | 'distant';
type Shape = 'closed' | 'paced';

interface Run {
  credential: Credential;
  shape: Shape;
  inFlight: number;
  result: LoadResult;
  /** Refreshes that reached the server during the run. */
  serverRefreshes: number;
  /** The daemon's `token refreshed` lines during the run, by reason. */
  byReason: Record<string, number>;
}

const PACE_MS = 100;

/** Runs the section. */
export async function benchRefreshLatency(options: RefreshLatencyOptions): Promise<SectionReport> {
  const servers: Record<Credential, OidcProcess> = {
    cached: await startOidcProcess({ accessTokenTtl: 3600 }),
    refreshing: await startOidcProcess({ accessTokenTtl: options.tokenTtlS }),
    distant: await startOidcProcess({ accessTokenTtl: options.tokenTtlS }),
  };
  const keyward = await startBenchDaemon();
  try {
    for (const credential of ['cached', 'refreshing', 'distant'] as const) {
      await addOAuthCredential(keyward.socket, servers[credential], credential);
      await loginCredential(keyward.socket, servers[credential], credential);
    }
    await servers.distant.delayTokenRequests(options.distantDelayMs);
    const kw = new KeywardClient({ socketPath: keyward.socket });
    const runs: Run[] = [];
    const measure = async (credential: Credential, shape: Shape, inFlight: number, durationMs: number) => {
      const server = servers[credential];
      const before = (await server.events()).grantSuccess.refresh_token ?? 0;
      const logFrom = keyward.daemon.output().length;
      const result = await closedLoop(() => kw.getToken(credential), {
        inFlight,
        durationMs,
        warmupMs: options.warmupMs,
        serverPid: keyward.pid,
        ...(shape === 'paced' ? { pauseMs: PACE_MS } : {}),
      });
      const after = (await server.events()).grantSuccess.refresh_token ?? 0;
      runs.push({
        credential,
        shape,
        inFlight,
        result,
        serverRefreshes: after - before,
        byReason: refreshesByReason(keyward.daemon.output().slice(logFrom)),
      });
    };
    for (const inFlight of [1, 50]) {
      await measure('cached', 'closed', inFlight, options.cachedMs);
      await measure('refreshing', 'closed', inFlight, options.refreshingMs);
    }
    for (const credential of ['cached', 'refreshing', 'distant'] as const) {
      await measure(credential, 'paced', 1, options.pacedMs);
    }
    return render(runs, options);
  } finally {
    await keyward.close();
    for (const server of Object.values(servers)) await server.close();
  }
}

function label(r: Run, options: RefreshLatencyOptions): string {
  if (r.credential === 'cached') return 'cached (1 h token)';
  const ttl = `${options.tokenTtlS} s token`;
  return r.credential === 'refreshing'
    ? `refreshing (${ttl}, loopback server)`
    : `refreshing (${ttl}, server +${options.distantDelayMs} ms)`;
}

function render(runs: Run[], options: RefreshLatencyOptions): SectionReport {
  const find = (credential: Credential, shape: Shape, inFlight: number) =>
    runs.find((r) => r.credential === credential && r.shape === shape && r.inFlight === inFlight) as Run;
  const shapeLabel = (r: Run) =>
    r.shape === 'closed' ? `${r.inFlight} in flight, closed loop` : `1 caller, ${1000 / PACE_MS} calls/s`;
  const rows = runs.map((r) => {
    const cached = find('cached', r.shape, r.inFlight).result.latency;
    const l = r.result.latency;
    const reasons = Object.entries(r.byReason)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return [
      shapeLabel(r),
      label(r, options),
      `${r.result.seconds} s`,
      fmtInt(l.n),
      fmtUs(l.p50Us),
      fmtUs(l.p99Us),
      fmtUs(l.p999Us),
      fmtUs(l.maxUs),
      fmtRatio(l.p99Us / cached.p99Us),
      String(r.result.slow),
      String(r.serverRefreshes),
      reasons || 'none',
      String(r.result.errors),
    ];
  });
  const target = (credential: Credential, shape: Shape, inFlight: number, what: string): TargetOutcome => {
    const cached = find('cached', shape, inFlight).result.latency;
    const run = find(credential, shape, inFlight);
    const ratio = run.result.latency.p99Us / cached.p99Us;
    return {
      target: `p99 during refresh cycles within 2× the cached p99 (${what})`,
      measured:
        `${fmtUs(run.result.latency.p99Us)} vs ${fmtUs(cached.p99Us)} = ${fmtRatio(ratio)}; ` +
        `${run.result.slow} of ${fmtInt(run.result.latency.n)} calls over 50 ms; refreshes by reason: ` +
        (Object.entries(run.byReason)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'),
      met: ratio <= 2,
    };
  };
  const body = [
    'All three credentials are OAuth (authorization code, rotating refresh tokens), each on its own ' +
      'oidc-provider fixture process; the SDK asks with the default `min_ttl` (60 s, capped at half the ' +
      'lifetime). "refreshes" counts the refresh grants that reached the server; "by reason" is what the ' +
      'daemon logged (`expiring`: callers were waiting for it; `proactive`: the scheduler refreshed ahead ' +
      'of need). "slow" counts calls over 50 ms.',
    '',
    table(
      [
        'load',
        'credential',
        'run',
        'calls',
        'p50',
        'p99',
        'p99.9',
        'max',
        'p99 vs cached',
        'slow',
        'refreshes',
        'by reason',
        'errors',
      ],
      rows,
    ),
  ].join('\n');
  return {
    title: 'Latency while tokens are refreshed',
    body,
    targets: [
      target('refreshing', 'closed', 1, '1 in flight, loopback server'),
      target('refreshing', 'closed', 50, '50 in flight, loopback server'),
      target('refreshing', 'paced', 1, `1 caller at ${1000 / PACE_MS}/s, loopback server`),
      target('distant', 'paced', 1, `1 caller at ${1000 / PACE_MS}/s, server +${options.distantDelayMs} ms`),
    ],
    raw: runs,
  };
}
