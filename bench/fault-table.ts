/**
 * Prints the fault suite's summary table (the one in the README) from the JSON files the fault
 * tests leave in KEYWARD_FAULT_SUMMARY_DIR:
 *
 *   node dist/bench/fault-table.js dist/fault-summary
 */
import fs from 'node:fs';
import path from 'node:path';
import { table } from './report.js';

type Summary = Record<string, any>;

function read(dir: string, name: string): Summary | undefined {
  const file = path.join(dir, `${name}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Summary) : undefined;
}

const dir = process.argv[2] ?? 'dist/fault-summary';
const kill = read(dir, 'kill');
const chaos = read(dir, 'chaos');
const fuzz = read(dir, 'fuzz');
const soak = read(dir, 'soak');
const rows: string[][] = [];
if (kill) {
  rows.push(
    ['kill -9 during continuous 1 s refreshes', 'kills', String(kill.kills)],
    ['', 'kills that cut a refresh exchange (server rotated, commit not logged)', String(kill.cutExchanges)],
    [
      '',
      'credentials lost inside the exchange (needs_login) vs expected from time share',
      `${kill.needsLogin} vs ${kill.expectedInsideExchange} (${(kill.exchangeShareOfTime * 100).toFixed(1)}% of credential-time in an exchange)`,
    ],
    ['', 'reuses of a committed refresh token', String(kill.reusesOfCommittedTokens)],
    ['', 'reuses while running', String(kill.reusesWhileRunning)],
    ['', 'silent losses', String(kill.silentLosses)],
  );
}
if (chaos) {
  const rowsOf = chaos.rows as Array<{
    case: string;
    phase: string;
    outcome: string;
    maxMs: number;
    requests: number;
  }>;
  rows.push(['token-endpoint chaos', 'cases (fault × with/without a valid token)', String(chaos.cases)]);
  for (const r of rowsOf) {
    rows.push([
      '',
      `${r.case}, ${r.phase}`,
      `${r.outcome}; slowest caller ${r.maxMs} ms; ${r.requests} upstream request(s)`,
    ]);
  }
}
if (fuzz) {
  const statuses = Object.entries(fuzz.statuses as Record<string, number>)
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  rows.push(
    ['socket API fuzzing (fast-check)', 'requests / non-HTTP inputs', `${fuzz.requests} / ${fuzz.garbage}`],
    ['', 'answers by status', statuses],
    [
      '',
      'RSS growth; open fds before → after',
      `${fuzz.rssGrowthMiB} MiB; ${fuzz.fdsBefore} → ${fuzz.fdsAfter}`,
    ],
  );
}
if (soak) {
  rows.push(
    [
      `soak (${soak.seconds} s)`,
      'requests served / failed; refreshes',
      `${soak.requests} / ${soak.failed}; ${soak.refreshes}`,
    ],
    [
      '',
      'RSS median first → last third; slope',
      `${soak.rssFirstThirdMiB} → ${soak.rssLastThirdMiB} MiB; ${soak.rssSlopeMiBPerMin} MiB/min`,
    ],
    [
      '',
      'open fds median first → last third; slope',
      `${soak.fdsFirstThird} → ${soak.fdsLastThird}; ${soak.fdSlopePerMin}/min`,
    ],
  );
}
process.stdout.write(`${table(['suite', 'measure', 'result'], rows)}\n`);
