/**
 * Section 2: token latency while 5-second access tokens are refreshed continuously, beside the
 * same load on a credential whose token stays cached (a 1-hour token from a second fixture
 * server). Proactive refresh should keep the authorization server's round trip away from
 * callers: the target is a p99 within 2× the cached p99. Both fixture servers run in
 * their own processes, off the load generator's event loop.
 */
import { KeywardClient } from '../client/index.js';
import { addOAuthCredential, loginCredential } from '../test/faults/support/keyward-oauth.js';
import { refreshesByReason } from './daemon-log.js';
import { startBenchDaemon } from './keyward-process.js';
import { closedLoop, type LoadResult } from './load.js';
import { startOidcProcess } from './oidc-process.js';
import { type SectionReport, table } from './report.js';
import { fmtInt, fmtRatio, fmtUs } from './stats.js';

/** How long each side runs. */
export interface RefreshLatencyOptions {
  cachedMs: number;
  refreshingMs: number;
  warmupMs: number;
  tokenTtlS: number;
}

interface Run {
  credential: 'cached' | 'refreshing';
  inFlight: number;
  result: LoadResult;
  /** Refreshes that reached the server during the run. */
  serverRefreshes: number;
  /** The daemon's `token refreshed` lines during the run, by reason. */
  byReason: Record<string, number>;
}

/** Runs the section. */
export async function benchRefreshLatency(options: RefreshLatencyOptions): Promise<SectionReport> {
  const cachedServer = await startOidcProcess({ accessTokenTtl: 3600 });
  const refreshingServer = await startOidcProcess({ accessTokenTtl: options.tokenTtlS });
  const keyward = await startBenchDaemon();
  try {
    await addOAuthCredential(keyward.socket, cachedServer, 'cached');
    await addOAuthCredential(keyward.socket, refreshingServer, 'refreshing');
    await loginCredential(keyward.socket, cachedServer, 'cached');
    await loginCredential(keyward.socket, refreshingServer, 'refreshing');
    const kw = new KeywardClient({ socketPath: keyward.socket });
    const runs: Run[] = [];
    for (const inFlight of [1, 50]) {
      for (const credential of ['cached', 'refreshing'] as const) {
        const server = credential === 'cached' ? cachedServer : refreshingServer;
        const before = (await server.events()).grantSuccess.refresh_token ?? 0;
        const logFrom = keyward.daemon.output().length;
        const result = await closedLoop(() => kw.getToken(credential), {
          inFlight,
          durationMs: credential === 'cached' ? options.cachedMs : options.refreshingMs,
          warmupMs: options.warmupMs,
          serverPid: keyward.pid,
        });
        const after = (await server.events()).grantSuccess.refresh_token ?? 0;
        runs.push({
          credential,
          inFlight,
          result,
          serverRefreshes: after - before,
          byReason: refreshesByReason(keyward.daemon.output().slice(logFrom)),
        });
      }
    }
    return render(runs, options);
  } finally {
    await keyward.close();
    await cachedServer.close();
    await refreshingServer.close();
  }
}

function render(runs: Run[], options: RefreshLatencyOptions): SectionReport {
  const find = (credential: Run['credential'], inFlight: number) =>
    runs.find((r) => r.credential === credential && r.inFlight === inFlight) as Run;
  const rows = runs.map((r) => {
    const cached = find('cached', r.inFlight).result.latency;
    const l = r.result.latency;
    const reasons = Object.entries(r.byReason)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return [
      String(r.inFlight),
      r.credential === 'cached' ? 'cached (1 h token)' : `refreshing (${options.tokenTtlS} s token)`,
      `${r.result.seconds} s`,
      fmtUs(l.p50Us),
      fmtUs(l.p99Us),
      fmtUs(l.p999Us),
      fmtUs(l.maxUs),
      fmtRatio(l.p99Us / cached.p99Us),
      fmtInt(r.result.throughput),
      String(r.serverRefreshes),
      reasons || 'none',
      String(r.result.errors),
    ];
  });
  const targets = [1, 50].map((inFlight) => {
    const cached = find('cached', inFlight).result.latency;
    const refreshing = find('refreshing', inFlight);
    const ratio = refreshing.result.latency.p99Us / cached.p99Us;
    return {
      target: `p99 during refresh cycles within 2× the cached p99 (${inFlight} in flight)`,
      measured: `${fmtUs(refreshing.result.latency.p99Us)} vs ${fmtUs(cached.p99Us)} = ${fmtRatio(ratio)} (p99.9 ${fmtUs(refreshing.result.latency.p999Us)} vs ${fmtUs(cached.p999Us)})`,
      met: ratio <= 2,
    };
  });
  const body = [
    `Both credentials are OAuth (authorization code, rotating refresh tokens) on two oidc-provider ` +
      `fixture processes; the SDK asks with the default \`min_ttl\` (60 s, capped at half the lifetime). ` +
      `"refreshes" counts the refresh grants that reached the server; "by reason" is what the daemon logged ` +
      `(\`expiring\`: a caller was waiting for it; \`proactive\`: the scheduler refreshed ahead of expiry).`,
    '',
    table(
      [
        'in flight',
        'credential',
        'run',
        'p50',
        'p99',
        'p99.9',
        'max',
        'p99 vs cached',
        'ops/s',
        'refreshes',
        'by reason',
        'errors',
      ],
      rows,
    ),
  ].join('\n');
  return { title: 'Latency while tokens are refreshed', body, targets, raw: runs };
}
