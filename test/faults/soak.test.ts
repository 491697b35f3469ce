/**
 * A bounded soak: steady mixed load on the daemon (cached API-key tokens over keep-alive, OAuth
 * tokens refreshed every second against oidc-provider, status and error answers on fresh
 * connections) while its resident memory and open file descriptors are sampled from /proc. After
 * an 8-second warm-up, neither may trend upwards: the last third of the samples is compared with
 * the first, and the least-squares slope is reported.
 *
 * KEYWARD_SOAK_SECONDS sets the duration (default 20; `npm run test:faults` runs 120).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywardClient } from '../../client/index.js';
import { type OidcServer, startOidcServer } from '../fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  socketRequest,
  startDaemon,
  type TestHome,
} from '../helpers/daemon-process.js';
import { addOAuthCredential, loginCredential } from './support/keyward-oauth.js';
import { median, PROC_AVAILABLE, type ResourceSample, sampleResources, slope } from './support/proc-stats.js';
import { envInt, recordFaultSummary } from './support/summary.js';

const SECONDS = envInt('KEYWARD_SOAK_SECONDS', 20);
/** Load before sampling starts, not counted in the trend. */
const WARMUP_MS = 8_000;
const MiB = 2 ** 20;
/** How much the resident set may differ between the first and last thirds of the steady part. */
const RSS_ALLOWANCE = 16 * MiB;
/** Descriptors come and go with connections; a leak shows as a climb beyond this. */
const FD_ALLOWANCE = 4;

describe(`soak (${SECONDS} s)`, {
  skip: !PROC_AVAILABLE && 'needs /proc',
  timeout: SECONDS * 1000 + WARMUP_MS + 90_000,
}, () => {
  let server: OidcServer;
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: 2 });
    home = makeHome({ KEYWARD_LOG_LEVEL: 'info' });
    daemon = await startDaemon(home);
    const add = await socketRequest(home.socket, 'POST', '/v1/credentials', {
      body: { name: 'soak-key', kind: 'api_key', secret: 'sk-soak-0123456789abcdef' },
    });
    assert.equal(add.status, 201);
    await addOAuthCredential(home.socket, server, 'soak-oauth');
    await loginCredential(home.socket, server, 'soak-oauth');
  });

  after(async () => {
    await daemon?.stop();
    await server?.close();
    home?.cleanup();
  });

  test('memory and open descriptors show no growth trend under steady load', async () => {
    const pid = daemon.child.pid as number;
    const kw = new KeywardClient({ socketPath: home.socket });
    const counts = { ok: 0, failed: 0, expectedErrors: 0 };
    let stopped = false;
    const loop = async (op: () => Promise<unknown>, pauseMs: number) => {
      while (!stopped) {
        await op();
        await sleep(pauseMs);
      }
    };
    const counted = (p: Promise<unknown>) =>
      p.then(
        () => {
          counts.ok += 1;
        },
        () => {
          counts.failed += 1;
        },
      );
    // Fresh connections each time: a descriptor leak per connection would show here.
    const freshConnection = async () => {
      const status = await socketRequest(home.socket, 'GET', '/v1/status');
      const missing = await socketRequest(home.socket, 'POST', '/v1/credentials/nope/token', { body: {} });
      const bad = await socketRequest(home.socket, 'POST', '/v1/credentials/soak-key/token', {
        raw: '{"min_ttl":',
      });
      if (status.status === 200 && missing.status === 404 && bad.status === 400) counts.expectedErrors += 2;
      else counts.failed += 1;
    };
    const load = [
      ...Array.from({ length: 6 }, () => loop(() => counted(kw.getToken('soak-key')), 1)),
      ...Array.from({ length: 2 }, () => loop(() => counted(kw.getToken('soak-oauth')), 1)),
      loop(freshConnection, 5),
    ];
    // V8 grows its heap for a while under a new load; sample only once that has settled.
    await sleep(WARMUP_MS);
    const sampler = sampleResources(pid, 500);
    await sleep(SECONDS * 1000);
    stopped = true;
    await Promise.all(load);
    const samples = sampler.stop();
    const refreshes = server.events.grantSuccess.refresh_token ?? 0;

    const steady = samples;
    const third = Math.max(1, Math.floor(steady.length / 3));
    const first = steady.slice(0, third);
    const last = steady.slice(-third);
    const med = (s: ResourceSample[], f: (x: ResourceSample) => number) => median(s.map(f));
    const rssDelta = med(last, (s) => s.rssBytes) - med(first, (s) => s.rssBytes);
    const fdDelta = med(last, (s) => s.fds) - med(first, (s) => s.fds);
    const rssSlope = slope(steady.map((s) => [s.atMs / 60_000, s.rssBytes / MiB] as const));
    const fdSlope = slope(steady.map((s) => [s.atMs / 60_000, s.fds] as const));
    recordFaultSummary('soak', {
      seconds: SECONDS,
      requests: counts.ok + counts.expectedErrors,
      failed: counts.failed,
      refreshes,
      samples: samples.length,
      rssFirstThirdMiB: Math.round((med(first, (s) => s.rssBytes) / MiB) * 10) / 10,
      rssLastThirdMiB: Math.round((med(last, (s) => s.rssBytes) / MiB) * 10) / 10,
      rssSlopeMiBPerMin: Math.round(rssSlope * 100) / 100,
      fdsFirstThird: med(first, (s) => s.fds),
      fdsLastThird: med(last, (s) => s.fds),
      fdSlopePerMin: Math.round(fdSlope * 100) / 100,
    });

    assert.equal(counts.failed, 0, 'requests failed under a load the daemon should carry');
    assert.ok(counts.ok > SECONDS * 50, `only ${counts.ok} tokens served in ${SECONDS} s`);
    assert.ok(refreshes >= SECONDS / 2, `only ${refreshes} refreshes: the OAuth credential was not cycling`);
    assert.ok(rssDelta < RSS_ALLOWANCE, `RSS grew by ${(rssDelta / MiB).toFixed(1)} MiB across the soak`);
    assert.ok(fdDelta <= FD_ALLOWANCE, `open descriptors grew by ${fdDelta} across the soak`);
    assert.equal(daemon.child.exitCode, null);
  });
});
