/**
 * Section 1: cached token latency and throughput through the SDK, at 1 and 50 in flight, beside
 * the floors measured in the same run: a bare `node:net` echo over a Unix socket, and the SDK
 * against a bare `node:http` server (HTTP framing alone). `GET /v1/health` through the SDK shows
 * what fastify adds before any vault work.
 */
import os from 'node:os';
import path from 'node:path';
import { KeywardClient } from '../client/index.js';
import { median } from '../test/faults/support/proc-stats.js';
import { EchoConnection, startFloorServer } from './floor.js';
import { addApiKey, startBenchDaemon } from './keyward-process.js';
import { closedLoop, type LoadResult } from './load.js';
import { type SectionReport, table } from './report.js';
import { fmtInt, fmtRatio, fmtUs } from './stats.js';

/** How long each measurement runs. */
export interface LatencyOptions {
  durationMs: number;
  warmupMs: number;
  /** Interleaved rounds of every subject; figures are the median round. */
  rounds: number;
}

type Subject = 'echo' | 'http-floor' | 'health' | 'token';
const SUBJECTS: Subject[] = ['echo', 'http-floor', 'health', 'token'];
const LABELS: Record<Subject, string> = {
  echo: 'floor: node:net echo, 256 B each way',
  'http-floor': 'floor: SDK → bare node:http server',
  health: 'keyward: SDK `health()`',
  token: 'keyward: SDK `getToken()` (API key, cached)',
};

/** The medians of several rounds of one subject at one concurrency. */
export interface LatencyFigure {
  subject: Subject;
  inFlight: number;
  p50Us: number;
  p99Us: number;
  throughput: number;
  serverCpu: number | undefined;
  clientCpu: number;
  errors: number;
  rounds: LoadResult[];
}

function aggregate(subject: Subject, inFlight: number, rounds: LoadResult[]): LatencyFigure {
  return {
    subject,
    inFlight,
    p50Us: median(rounds.map((r) => r.latency.p50Us)),
    p99Us: median(rounds.map((r) => r.latency.p99Us)),
    throughput: median(rounds.map((r) => r.throughput)),
    serverCpu: median(rounds.map((r) => r.serverCpu ?? Number.NaN)),
    clientCpu: median(rounds.map((r) => r.clientCpu)),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    rounds,
  };
}

/** Runs the section. */
export async function benchTokenLatency(options: LatencyOptions): Promise<SectionReport> {
  const dir = path.join(os.tmpdir(), `kw-bench-floor-${process.pid}`);
  const { mkdirSync, rmSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const echo = await startFloorServer('echo', path.join(dir, 'echo.sock'));
  const httpFloor = await startFloorServer('http', path.join(dir, 'http.sock'));
  const keyward = await startBenchDaemon();
  try {
    await addApiKey(keyward.socket, 'bench', `sk-bench-${'x'.repeat(40)}`);
    const kw = new KeywardClient({ socketPath: keyward.socket });
    const floorClient = new KeywardClient({ socketPath: httpFloor.socketPath });
    const message = Buffer.alloc(256, 0x61);
    const results = new Map<string, LoadResult[]>();

    for (let round = 0; round < options.rounds; round += 1) {
      for (const inFlight of [1, 50]) {
        const connections = await Promise.all(
          Array.from({ length: inFlight }, () => EchoConnection.connect(echo.socketPath)),
        );
        const ops: Record<Subject, { op: (worker: number) => Promise<unknown>; pid: number }> = {
          echo: { op: (w) => (connections[w] as EchoConnection).roundTrip(message), pid: echo.pid },
          'http-floor': { op: () => floorClient.getToken('bench'), pid: httpFloor.pid },
          health: { op: () => kw.health(), pid: keyward.pid },
          token: { op: () => kw.getToken('bench'), pid: keyward.pid },
        };
        for (const subject of SUBJECTS) {
          const { op, pid } = ops[subject];
          const result = await closedLoop(op, {
            inFlight,
            durationMs: options.durationMs,
            warmupMs: options.warmupMs,
            serverPid: pid,
          });
          const key = `${subject}@${inFlight}`;
          results.set(key, [...(results.get(key) ?? []), result]);
        }
        for (const c of connections) c.close();
      }
    }

    const figures: LatencyFigure[] = [];
    for (const inFlight of [1, 50]) {
      for (const subject of SUBJECTS) {
        figures.push(aggregate(subject, inFlight, results.get(`${subject}@${inFlight}`) ?? []));
      }
    }
    return render(figures, options);
  } finally {
    await keyward.close();
    await echo.stop();
    await httpFloor.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(figures: LatencyFigure[], options: LatencyOptions): SectionReport {
  const find = (subject: Subject, inFlight: number) =>
    figures.find((f) => f.subject === subject && f.inFlight === inFlight) as LatencyFigure;
  const pct = (v: number | undefined) =>
    v === undefined || Number.isNaN(v) ? 'n/a' : `${Math.round(v * 100)}%`;
  const rows = figures.map((f) => {
    const echo = find('echo', f.inFlight);
    return [
      String(f.inFlight),
      LABELS[f.subject],
      fmtUs(f.p50Us),
      fmtUs(f.p99Us),
      fmtInt(f.throughput),
      fmtRatio(f.p50Us / echo.p50Us),
      pct(f.serverCpu),
      pct(f.clientCpu),
      String(f.errors),
    ];
  });
  const token1 = find('token', 1);
  const echo1 = find('echo', 1);
  const token50 = find('token', 50);
  const ratio = token1.p50Us / echo1.p50Us;
  const body = [
    `Closed loop, ${options.rounds} interleaved rounds of ${options.durationMs / 1000} s each ` +
      `(after ${options.warmupMs / 1000} s warm-up); figures are the median round. ` +
      'CPU is the share of one core used by the server process and by the load generator (this process).',
    '',
    table(
      ['in flight', 'subject', 'p50', 'p99', 'ops/s', 'p50 vs echo', 'server CPU', 'client CPU', 'errors'],
      rows,
    ),
  ].join('\n');
  return {
    title: 'Token latency and throughput against the floor',
    body,
    targets: [
      {
        target: 'cached token p50 within 2× the bare-socket floor',
        measured: `${fmtUs(token1.p50Us)} vs echo ${fmtUs(echo1.p50Us)} = ${fmtRatio(ratio)}`,
        met: ratio <= 2,
      },
      {
        target: '≥ 20,000 tokens/s at 50 in flight on 2 cores',
        measured: `${fmtInt(token50.throughput)} tokens/s (daemon CPU ${pct(token50.serverCpu)}, load generator ${pct(token50.clientCpu)})`,
        met: token50.throughput >= 20_000,
      },
    ],
    raw: figures,
  };
}
