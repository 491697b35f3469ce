/**
 * Where each fault test leaves its counts (kills, losses, reuses, chaos cases, fuzz runs, soak
 * trend) for the README's summary table: a JSON file per test in `KEYWARD_FAULT_SUMMARY_DIR` when
 * that is set (`npm run test:faults` sets it), and one line on stdout either way.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Records one test's summary. */
export function recordFaultSummary(name: string, data: Record<string, unknown>): void {
  const json = JSON.stringify(data);
  process.stdout.write(`fault-summary ${name} ${json}\n`);
  const dir = process.env.KEYWARD_FAULT_SUMMARY_DIR;
  if (dir === undefined || dir === '') return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(data, null, 1)}\n`);
}

/** Reads a positive integer setting from the environment, or the default. */
export function envInt(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}
