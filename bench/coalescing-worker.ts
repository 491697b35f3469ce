/**
 * One process of the coalescing benchmark (forked by coalescing.ts): it prepares `callers`
 * concurrent token requests, waits for the parent's "go" so every process starts together, fires
 * them, and reports what each caller got.
 */
import { KeywardClient } from '../client/index.js';
import { type NaiveConfig, NaiveRefresher } from './naive-refresher.js';

/** What the parent sends first. */
export interface WorkerSetup {
  mode: 'keyward' | 'naive-per-process' | 'naive-per-caller';
  callers: number;
  /** keyward mode. */
  socketPath?: string;
  credential?: string;
  /** naive modes. */
  naive?: NaiveConfig;
}

/** What the worker reports. */
export interface WorkerReport {
  ok: number;
  /** Error messages (codes for keyward) and how many callers got each. */
  errors: Record<string, number>;
  /** Distinct access tokens handed to callers. */
  tokens: string[];
  latenciesMs: number[];
}

async function prepare(setup: WorkerSetup): Promise<() => Promise<string>> {
  if (setup.mode === 'keyward') {
    const kw = new KeywardClient({ socketPath: setup.socketPath });
    // Open the connections first (the agent keeps up to 64), so that the burst measures the
    // daemon, not socket set-up. The parent prepares one process at a time: 10 processes opening
    // 64 connections at once overflow the daemon's accept backlog (511), and connect() then
    // fails with EAGAIN (reported in bench/results.md).
    await Promise.all(Array.from({ length: setup.callers }, () => kw.health()));
    return async () => (await kw.getToken(setup.credential as string)).accessToken;
  }
  const refresher = new NaiveRefresher(setup.naive as NaiveConfig, {
    coalesce: setup.mode === 'naive-per-process',
  });
  return () => refresher.getToken();
}

async function fire(getToken: () => Promise<string>, callers: number): Promise<WorkerReport> {
  const report: WorkerReport = { ok: 0, errors: {}, tokens: [], latenciesMs: [] };
  const tokens = new Set<string>();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      const started = performance.now();
      try {
        tokens.add(await getToken());
        report.ok += 1;
      } catch (err) {
        const code = (err as { code?: string }).code;
        const message = (err as Error).message;
        const key = code === undefined ? message : `${code} (${message.slice(0, 80)})`;
        report.errors[key] = (report.errors[key] ?? 0) + 1;
      }
      report.latenciesMs.push(performance.now() - started);
    }),
  );
  report.tokens = [...tokens];
  return report;
}

if (process.send !== undefined) {
  let getToken: (() => Promise<string>) | undefined;
  let setup: WorkerSetup | undefined;
  process.on('message', (msg: { setup?: WorkerSetup; go?: true }) => {
    if (msg.setup !== undefined) {
      setup = msg.setup;
      prepare(msg.setup).then(
        (fn) => {
          getToken = fn;
          process.send?.({ ready: true });
        },
        (err: unknown) => process.send?.({ failed: (err as Error).message }),
      );
    } else if (msg.go && getToken !== undefined && setup !== undefined) {
      fire(getToken, setup.callers).then((report) => {
        process.send?.({ report });
        process.disconnect();
      });
    }
  });
}
