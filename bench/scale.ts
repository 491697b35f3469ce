/**
 * Section 5: scale. A vault with 10,000 credentials (mostly API keys, some OAuth credentials
 * registered with explicit endpoints and never logged in): daemon start-up time, `status` time,
 * RSS idle and under load, and the vault's size on disk, each beside the same figure for an empty
 * vault measured in the same run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywardClient } from '../client/index.js';
import { median, readRssBytes, sampleResources } from '../test/faults/support/proc-stats.js';
import { CLI, makeHome, socketRequest, type TestHome } from '../test/helpers/daemon-process.js';
import { closedLoop } from './load.js';
import { type SectionReport, table } from './report.js';
import { timeRepeatedly } from './spawn-timing.js';
import { fmtBytes, fmtInt, fmtMiB, fmtUs } from './stats.js';

/** The vault's size and how much is measured. */
export interface ScaleOptions {
  credentials: number;
  /** One credential in this many is OAuth. */
  oauthEvery: number;
  startups: number;
  loadMs: number;
}

const credentialName = (i: number) => `cred-${String(i).padStart(5, '0')}`;

interface Started {
  pid: number;
  ms: number;
  stop(): Promise<void>;
}

/** Spawns `keyward daemon` and measures the time until `GET /v1/health` first answers. */
async function startTimed(home: TestHome): Promise<Started> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [CLI, 'daemon'], {
    env: home.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`daemon exited with ${child.exitCode}: ${stderr.slice(-500)}`);
    try {
      const res = await socketRequest(home.socket, 'GET', '/v1/health');
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(2);
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return {
    pid: child.pid as number,
    ms,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function fill(home: TestHome, options: ScaleOptions): Promise<number> {
  const daemon = await startTimed(home);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= options.credentials) return;
      const name = credentialName(i);
      const body =
        i % options.oauthEvery === 0
          ? {
              name,
              kind: 'oauth',
              client_id: `client-${i}`,
              scope: 'repo read:org',
              authorization_url: 'http://127.0.0.1:9/authorize',
              token_url: 'http://127.0.0.1:9/token',
            }
          : { name, kind: 'api_key', secret: `sk-scale-${i}-${'z'.repeat(32)}` };
      const res = await socketRequest(home.socket, 'POST', '/v1/credentials', { body });
      if (res.status !== 201) throw new Error(`adding ${name}: HTTP ${res.status} ${res.text}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const seconds = (performance.now() - started) / 1000;
  await daemon.stop();
  return options.credentials / seconds;
}

interface Profile {
  credentials: number;
  startupMs: number[];
  idleRssBytes: number;
  statusApiMs: number[];
  statusBytes: number;
  statusCliMs: number[];
  loadRssMaxBytes: number;
  loadThroughput: number;
  loadP99Us: number;
  vaultBytes: Record<string, number>;
}

async function profile(
  home: TestHome,
  options: ScaleOptions,
  credentials: number,
  apiKeyNames: string[],
  startupMs: number[],
): Promise<Profile> {
  const daemon = await startTimed(home);
  try {
    await sleep(2000);
    const idleRssBytes = readRssBytes(daemon.pid);
    const statusApiMs: number[] = [];
    let statusBytes = 0;
    for (let i = 0; i < 5; i += 1) {
      const t0 = performance.now();
      const res = await socketRequest(home.socket, 'GET', '/v1/status');
      statusApiMs.push(performance.now() - t0);
      statusBytes = Buffer.byteLength(res.text);
      if (res.status !== 200 || res.body.credentials.length !== credentials) {
        throw new Error(
          `status listed ${res.body?.credentials?.length} credentials, expected ${credentials}`,
        );
      }
    }
    const statusCliMs = await timeRepeatedly(
      process.execPath,
      [CLI, 'status', '--json'],
      home.env,
      3,
      1,
      (r) => r.code === 0,
    );
    const kw = new KeywardClient({ socketPath: home.socket });
    const sampler = sampleResources(daemon.pid, 250);
    const pick = () => apiKeyNames[Math.floor(Math.random() * apiKeyNames.length)] as string;
    const load = await closedLoop(() => kw.getToken(pick()), {
      inFlight: 50,
      durationMs: options.loadMs,
      warmupMs: 500,
      serverPid: daemon.pid,
    });
    const samples = sampler.stop();
    const vaultBytes: Record<string, number> = {};
    for (const file of fs.readdirSync(home.home)) {
      if (file.startsWith('vault.db')) vaultBytes[file] = fs.statSync(path.join(home.home, file)).size;
    }
    return {
      credentials,
      startupMs,
      idleRssBytes,
      statusApiMs,
      statusBytes,
      statusCliMs,
      loadRssMaxBytes: Math.max(...samples.map((s) => s.rssBytes)),
      loadThroughput: load.throughput,
      loadP99Us: load.latency.p99Us,
      vaultBytes,
    };
  } finally {
    await daemon.stop();
  }
}

/** Runs the section. */
export async function benchScale(options: ScaleOptions): Promise<SectionReport> {
  const empty = makeHome({ KEYWARD_LOG_LEVEL: 'info' });
  const full = makeHome({ KEYWARD_LOG_LEVEL: 'info' });
  try {
    // The empty profile still needs one API key for its load; it counts as "empty".
    const first = await startTimed(empty);
    await socketRequest(empty.socket, 'POST', '/v1/credentials', {
      body: { name: 'cred-00001', kind: 'api_key', secret: `sk-scale-1-${'z'.repeat(32)}` },
    });
    await first.stop();
    const insertsPerSecond = await fill(full, options);
    // Start-ups alternate between the two vaults, so that a busy moment on the machine cannot
    // favour one of them.
    const startups = { empty: [] as number[], full: [] as number[] };
    for (let i = 0; i < options.startups; i += 1) {
      for (const [key, home] of [
        ['empty', empty],
        ['full', full],
      ] as const) {
        const d = await startTimed(home);
        startups[key].push(d.ms);
        await d.stop();
      }
    }
    const baseline = await profile(empty, options, 1, ['cred-00001'], startups.empty);
    const apiKeyNames = Array.from({ length: options.credentials }, (_, i) => i)
      .filter((i) => i % options.oauthEvery !== 0)
      .map(credentialName);
    const loaded = await profile(full, options, options.credentials, apiKeyNames, startups.full);
    return render(baseline, loaded, insertsPerSecond, options);
  } finally {
    empty.cleanup();
    full.cleanup();
  }
}

function render(
  baseline: Profile,
  loaded: Profile,
  insertsPerSecond: number,
  options: ScaleOptions,
): SectionReport {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const med = (v: number[]) => median(v);
  const size = (p: Profile) =>
    Object.entries(p.vaultBytes)
      .map(([f, b]) => `${f} ${fmtBytes(b)}`)
      .join(', ');
  const row = (what: string, f: (p: Profile) => string) => [what, f(baseline), f(loaded)];
  const rows = [
    row(
      'daemon start-up to first `health` answer (median; all runs)',
      (p) => `${ms(med(p.startupMs))} (${p.startupMs.map((v) => v.toFixed(0)).join(', ')})`,
    ),
    row(
      '`GET /v1/status` over the socket (median)',
      (p) => `${ms(med(p.statusApiMs))}, ${fmtInt(p.statusBytes)} bytes`,
    ),
    row('`keyward status --json` whole process (median)', (p) => ms(med(p.statusCliMs))),
    row('RSS idle (2 s after start)', (p) => fmtMiB(p.idleRssBytes)),
    row('RSS max under load (50 in flight, random API keys)', (p) => fmtMiB(p.loadRssMaxBytes)),
    row('tokens/s under that load; p99', (p) => `${fmtInt(p.loadThroughput)}; ${fmtUs(p.loadP99Us)}`),
    row('vault files', size),
  ];
  const startup = med(loaded.startupMs);
  const oauth = Math.ceil(options.credentials / options.oauthEvery);
  const body = [
    `${fmtInt(options.credentials)} credentials: ${fmtInt(options.credentials - oauth)} API keys and ${fmtInt(oauth)} OAuth ` +
      `credentials (explicit endpoints, never logged in), added through the socket API with 8 in flight at ` +
      `${fmtInt(insertsPerSecond)} credentials/s (each add is its own fsync'd transaction). Start-up is measured ` +
      `${options.startups} times from spawn (Node's own start-up included).`,
    '',
    table(['measure', 'empty vault (1 API key)', `${fmtInt(options.credentials)} credentials`], rows),
  ].join('\n');
  return {
    title: `Scale: ${fmtInt(options.credentials)} credentials`,
    body,
    targets: [
      {
        target: `start-up with ${fmtInt(options.credentials)} credentials under 500 ms`,
        measured: `${ms(startup)} (empty vault ${ms(med(baseline.startupMs))})`,
        met: startup < 500,
      },
      {
        target: 'idle RSS under 80 MB',
        measured: `${fmtMiB(loaded.idleRssBytes)} = ${(loaded.idleRssBytes / 1e6).toFixed(1)} MB with ${fmtInt(options.credentials)} credentials (empty vault ${fmtMiB(baseline.idleRssBytes)})`,
        met: loaded.idleRssBytes < 80 * 1e6,
        note: 'judged against 80 × 10⁶ bytes',
      },
    ],
    raw: { insertsPerSecond, baseline, loaded },
  };
}
