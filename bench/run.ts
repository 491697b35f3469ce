/**
 * `npm run bench`: runs every benchmark section in turn on this machine and writes
 * bench/results.md (machine, Node version, date, every figure with its baseline, and the issue's
 * targets as met or with their gap).
 *
 *   node dist/bench/run.js [--quick] [--only latency,refresh,cli,coalescing,scale] [--out FILE]
 *
 * `--quick` shrinks every duration and count to check the scripts; its figures mean little, so
 * it prints to stdout and writes a file only when `--out` is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCliToken } from './cli-token.js';
import { benchCoalescing } from './coalescing.js';
import { type ForeignLoad, watchForeignLoad } from './foreign-load.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { benchRefreshLatency } from './refresh-latency.js';
import type { SectionReport } from './report.js';
import { table } from './report.js';
import { benchScale } from './scale.js';
import { benchTokenLatency } from './token-latency.js';

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');

interface Args {
  quick: boolean;
  only: Set<string> | undefined;
  out: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: undefined, out: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--quick') args.quick = true;
    else if (arg === '--only') args.only = new Set((argv[++i] ?? '').split(','));
    else if (arg === '--out') args.out = argv[++i];
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!args.quick && args.out === undefined) args.out = path.join(BENCH_DIR, 'results.md');
  return args;
}

/** The sections, in the order they run. */
const SECTIONS: Array<{ key: string; run: (quick: boolean) => Promise<SectionReport> }> = [
  {
    key: 'latency',
    run: (quick) =>
      benchTokenLatency(
        quick
          ? { durationMs: 1000, warmupMs: 300, rounds: 1 }
          : { durationMs: 5000, warmupMs: 1000, rounds: 3 },
      ),
  },
  {
    key: 'refresh',
    run: (quick) =>
      benchRefreshLatency(
        quick
          ? {
              cachedMs: 2000,
              refreshingMs: 6000,
              pacedMs: 6000,
              warmupMs: 300,
              tokenTtlS: 5,
              distantDelayMs: 200,
            }
          : {
              cachedMs: 10_000,
              refreshingMs: 30_000,
              pacedMs: 30_000,
              warmupMs: 1000,
              tokenTtlS: 5,
              distantDelayMs: 200,
            },
      ),
  },
  {
    key: 'cli',
    run: (quick) => benchCliToken(quick ? { runs: 5, warmup: 1 } : { runs: 40, warmup: 3 }),
  },
  {
    key: 'coalescing',
    run: (quick) =>
      benchCoalescing(
        quick
          ? { processes: 10, callersPerProcess: 100, rounds: 1, tokenTtlS: 8 }
          : { processes: 10, callersPerProcess: 100, rounds: 3, tokenTtlS: 8 },
      ),
  },
  {
    key: 'scale',
    run: (quick) =>
      benchScale(
        quick
          ? { credentials: 500, oauthEvery: 10, startups: 2, loadMs: 2000 }
          : { credentials: 10_000, oauthEvery: 10, startups: 5, loadMs: 10_000 },
      ),
  },
];

function renderMachine(m: MachineInfo, foreign: ForeignLoad | undefined): string {
  const shared =
    foreign === undefined
      ? 'not measured (no /proc)'
      : `${Math.round(foreign.average * 100)}% of the machine on average, ${Math.round(foreign.max * 100)}% at most (10 s samples)`;
  const verdict =
    foreign !== undefined && foreign.average > 0.05
      ? "\n\n**The machine was shared during this run**: other processes (other engineers' builds and tests) " +
        'used the CPU share above, so latencies and throughputs are noisier and lower than on an idle machine; ' +
        'ratios between subjects measured side by side in the same run are the figures to read.'
      : '';
  return `${table(
    ['what', 'value'],
    [
      ['CPU', `${m.cpuModel}, ${m.cores} cores`],
      ['memory', `${m.memoryGiB} GiB`],
      ['OS', m.os],
      ['Node', m.node],
      ['date', m.date],
      ['load average at start (1 min)', m.loadAtStart.toFixed(2)],
      ['other busy processes at start', m.busyProcesses.length === 0 ? 'none' : m.busyProcesses.join(', ')],
      ['CPU used by other processes during the run', shared],
    ],
  )}${verdict}`;
}

function renderTargets(reports: SectionReport[]): string {
  const rows = reports.flatMap((r) =>
    r.targets.map((t) => [
      t.target,
      t.measured,
      t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met',
      t.note ?? '',
    ]),
  );
  return table(['target (issue 7)', 'measured', 'verdict', 'note'], rows);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const machine = await describeMachine();
  const foreignWatch = watchForeignLoad();
  const reports: SectionReport[] = [];
  for (const section of SECTIONS) {
    if (args.only !== undefined && !args.only.has(section.key)) continue;
    const started = Date.now();
    process.stderr.write(`bench: ${section.key} ...\n`);
    const report = await section.run(args.quick);
    process.stderr.write(`bench: ${section.key} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    reports.push(report);
    process.stdout.write(`\n## ${report.title}\n\n${report.body}\n`);
  }
  const foreign = foreignWatch.stop();
  const doc = [
    '# keyward benchmarks',
    '',
    `Written by \`npm run bench\`${args.quick ? ' --quick (shrunk parameters: figures are not representative)' : ''}.`,
    '',
    '## Machine',
    '',
    renderMachine(machine, foreign),
    '',
    'What each section measures and how to read the gaps: [bench/README.md](README.md).',
    '',
    '## Targets',
    '',
    renderTargets(reports),
    '',
    ...reports.flatMap((r) => [`## ${r.title}`, '', r.body, '']),
    '## Raw figures',
    '',
    '```json',
    JSON.stringify(
      Object.fromEntries(reports.map((r) => [r.title, r.raw])),
      (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v),
      1,
    ),
    '```',
    '',
  ].join('\n');
  process.stdout.write(`\n## Targets\n\n${renderTargets(reports)}\n`);
  if (args.out !== undefined) {
    fs.writeFileSync(args.out, doc);
    process.stderr.write(`bench: wrote ${args.out}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
