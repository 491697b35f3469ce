/**
 * Section 4: refresh coalescing. 1,000 callers spread over 10 processes ask at the same moment
 * for the token of a credential whose access token has just expired. Through keyward, the
 * refreshes that reach the server should be exactly one per expiry. The baseline is the same load
 * through per-process refreshers sharing a token file (naive-refresher.ts), with rotation and
 * reuse detection on: every extra refresh presents an already used refresh token, and
 * oidc-provider then revokes the whole grant.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KeywardClient } from '../client/index.js';
import { addOAuthCredential, loginCredential } from '../test/faults/support/keyward-oauth.js';
import type { WorkerReport, WorkerSetup } from './coalescing-worker.js';
import { refreshesByReason } from './daemon-log.js';
import { startBenchDaemon } from './keyward-process.js';
import { type NaiveConfig, refreshAt, type TokenFile } from './naive-refresher.js';
import { type OidcProcess, startOidcProcess } from './oidc-process.js';
import { type SectionReport, table } from './report.js';
import { summarize } from './stats.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'coalescing-worker.js');

/** The load's shape. */
export interface CoalescingOptions {
  processes: number;
  callersPerProcess: number;
  /** Expiries (fresh logins) per mode. */
  rounds: number;
  tokenTtlS: number;
}

type Mode = WorkerSetup['mode'];

/** One burst and what the server saw. */
interface Burst {
  mode: Mode;
  round: number;
  callers: number;
  ok: number;
  errors: Record<string, number>;
  distinctTokens: number;
  tokenRequests: number;
  refreshSuccesses: number;
  grantErrors: Record<string, number>;
  grantAliveAfter: boolean;
  /** keyward only: the daemon's `token refreshed` lines during the burst, by reason. */
  daemonRefreshes: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function runWorkers(setup: WorkerSetup, processes: number): Promise<WorkerReport[]> {
  const children = Array.from({ length: processes }, () =>
    fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const reports = children.map(
    (child) =>
      new Promise<WorkerReport>((resolve, reject) => {
        child.on('message', (msg: { report?: WorkerReport; failed?: string }) => {
          if (msg.report) resolve(msg.report);
          if (msg.failed) reject(new Error(msg.failed));
        });
        child.once('exit', (code) => reject(new Error(`coalescing worker exited with ${code}`)));
      }),
  );
  // One process at a time: see the worker's note on the accept backlog.
  for (const child of children) {
    await new Promise<void>((resolve) => {
      const onReady = (msg: { ready?: boolean }) => {
        if (msg.ready) {
          child.off('message', onReady);
          resolve();
        }
      };
      child.on('message', onReady);
      child.send({ setup });
    });
  }
  for (const child of children) child.send({ go: true });
  return Promise.all(reports);
}

function countErrors(
  events: Awaited<ReturnType<OidcProcess['events']>>,
  from: number,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events.grantErrors.slice(from)) {
    const key = `${e.error ?? 'unknown'}: ${e.detail ?? ''}`.trim();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Gets a first grant for the naive clients with the device flow (RFC 8628), approved headlessly. */
async function naiveLogin(server: OidcProcess, config: NaiveConfig): Promise<TokenFile> {
  const basic = `Basic ${Buffer.from(`${config.clientId}:${config.clientSecret}`).toString('base64')}`;
  const form = { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' };
  const started = await fetch(`${server.issuer}/device/auth`, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({ scope: 'openid api:read' }),
  });
  const device = (await started.json()) as { device_code: string; user_code: string };
  await server.approveDeviceCode(device.user_code);
  const sentAt = Date.now();
  const res = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: form,
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: device.device_code,
    }),
  });
  const body = (await res.json()) as { access_token: string; refresh_token: string; expires_in: number };
  if (typeof body.refresh_token !== 'string') throw new Error(`device login failed: ${JSON.stringify(body)}`);
  return {
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    expires_at: sentAt + body.expires_in * 1000,
  };
}

async function burst(
  mode: Mode,
  round: number,
  server: OidcProcess,
  options: CoalescingOptions,
  prepare: () => Promise<{ setup: WorkerSetup; alive: () => Promise<boolean> }>,
  daemonLog: () => string,
): Promise<Burst> {
  const { setup, alive } = await prepare();
  // Let the access token expire, unused (so no proactive refresh is due either).
  await sleep(options.tokenTtlS * 1000 + 300);
  const before = await server.events();
  const reqBefore = before.tokenRequests;
  const okBefore = before.grantSuccess.refresh_token ?? 0;
  const errBefore = before.grantErrors.length;
  const logFrom = daemonLog().length;
  const reports = await runWorkers(setup, options.processes);
  await sleep(200); // the server's last events
  const after = await server.events();
  const daemonRefreshes = mode === 'keyward' ? refreshesByReason(daemonLog().slice(logFrom)) : {};
  const latencies = reports.flatMap((r) => r.latenciesMs).map((ms) => ms * 1e6);
  const l = summarize(latencies);
  const errors: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    mode,
    round,
    callers: options.processes * options.callersPerProcess,
    ok: reports.reduce((s, r) => s + r.ok, 0),
    errors,
    distinctTokens: new Set(reports.flatMap((r) => r.tokens)).size,
    tokenRequests: after.tokenRequests - reqBefore,
    refreshSuccesses: (after.grantSuccess.refresh_token ?? 0) - okBefore,
    grantErrors: countErrors(after, errBefore),
    grantAliveAfter: await alive(),
    daemonRefreshes,
    p50Ms: l.p50Us / 1000,
    p99Ms: l.p99Us / 1000,
    maxMs: l.maxUs / 1000,
  };
}

/** Runs the section. */
export async function benchCoalescing(options: CoalescingOptions): Promise<SectionReport> {
  const server = await startOidcProcess({ accessTokenTtl: options.tokenTtlS });
  const keyward = await startBenchDaemon();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-bench-naive-'));
  const bursts: Burst[] = [];
  const daemonLog = () => keyward.daemon.output();
  try {
    const kw = new KeywardClient({ socketPath: keyward.socket });
    for (let round = 1; round <= options.rounds; round += 1) {
      const name = `herd-${round}`;
      bursts.push(
        await burst(
          'keyward',
          round,
          server,
          options,
          async () => {
            await addOAuthCredential(keyward.socket, server, name);
            await loginCredential(keyward.socket, server, name);
            return {
              setup: {
                mode: 'keyward',
                callers: options.callersPerProcess,
                socketPath: keyward.socket,
                credential: name,
              },
              alive: async () => {
                // Force one more refresh: it succeeds only if the grant survived the burst.
                const current = await kw.getToken(name);
                return kw.invalidate(name, current.accessToken).then(
                  () => true,
                  () => false,
                );
              },
            };
          },
          daemonLog,
        ),
      );
      for (const mode of ['naive-per-process', 'naive-per-caller'] as const) {
        bursts.push(
          await burst(
            mode,
            round,
            server,
            options,
            async () => {
              const config: NaiveConfig = {
                tokenEndpoint: `${server.issuer}/token`,
                clientId: server.clients.confidential.client_id,
                clientSecret: server.clients.confidential.client_secret,
                file: path.join(dir, `${mode}-${round}.json`),
              };
              fs.writeFileSync(config.file, JSON.stringify(await naiveLogin(server, config)));
              return {
                setup: { mode, callers: options.callersPerProcess, naive: config },
                alive: async () => {
                  const latest = JSON.parse(fs.readFileSync(config.file, 'utf8')) as TokenFile;
                  return refreshAt(config, latest.refresh_token).then(
                    () => true,
                    () => false,
                  );
                },
              };
            },
            daemonLog,
          ),
        );
      }
    }
    return render(bursts, options);
  } finally {
    await keyward.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const MODE_LABELS: Record<Mode, string> = {
  keyward: 'keyward (one daemon)',
  'naive-per-process': 'per-process refreshers, token file, single flight per process',
  'naive-per-caller': 'per-caller refreshers, token file, no coalescing',
};

function render(bursts: Burst[], options: CoalescingOptions): SectionReport {
  const fmtMap = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${v} × ${k}`)
      .join('; ') || 'none';
  const rows = bursts.map((b) => [
    MODE_LABELS[b.mode],
    String(b.round),
    `${b.ok} / ${b.callers}`,
    fmtMap(b.errors),
    String(b.tokenRequests),
    String(b.refreshSuccesses),
    fmtMap(b.grantErrors),
    b.grantAliveAfter ? 'yes' : 'no (revoked)',
    `${b.p50Ms.toFixed(1)} / ${b.p99Ms.toFixed(1)} / ${b.maxMs.toFixed(1)} ms`,
  ]);
  const keywardBursts = bursts.filter((b) => b.mode === 'keyward');
  const exactlyOne = keywardBursts.every((b) => b.tokenRequests === 1 && b.refreshSuccesses === 1);
  const reasons = (b: Burst) =>
    Object.entries(b.daemonRefreshes)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ') || 'none';
  const body = [
    `${options.processes} processes × ${options.callersPerProcess} callers fire together at a credential whose ` +
      `${options.tokenTtlS}-second access token has just expired, ${options.rounds} time(s) per mode, each on a fresh grant. ` +
      'The server is oidc-provider with refresh-token rotation and reuse detection; "grant errors" are its ' +
      '`grant.error` events with their reason. "grant alive after" tries one more refresh after the burst.',
    '',
    table(
      [
        'clients',
        'round',
        'callers served',
        'caller errors',
        'token requests at the server',
        'refreshes granted',
        'grant errors',
        'grant alive after',
        'latency p50 / p99 / max',
      ],
      rows,
    ),
  ].join('\n');
  return {
    title: 'Refresh coalescing: 1,000 callers on an expired credential',
    body,
    targets: [
      {
        target: 'exactly one refresh per expiry under the 1,000-caller load',
        measured: keywardBursts
          .map(
            (b) =>
              `round ${b.round}: ${b.tokenRequests} request(s) at the server (daemon: ${reasons(b)}), ${b.ok}/${b.callers} served`,
          )
          .join('; '),
        met: exactlyOne && keywardBursts.every((b) => b.ok === b.callers),
      },
    ],
    raw: bursts,
  };
}
