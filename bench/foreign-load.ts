/**
 * Measures how much CPU other processes (not this benchmark and its children) used while the
 * benchmark ran: on a shared machine that share is the noise in every figure, so results.md
 * states it. Linux only (/proc); elsewhere it reports nothing.
 */
import fs from 'node:fs';
import os from 'node:os';

/** CPU used by processes outside the benchmark's tree, as a share of the whole machine. */
export interface ForeignLoad {
  /** Average over the run (0..1 of all cores). */
  average: number;
  /** Largest 10-second sample. */
  max: number;
  samples: number;
}

const TICKS_PER_S = 100;

function machineBusyTicks(): number {
  const cpu =
    fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
  return cpu.reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
}

/** Sums the CPU ticks of this process and all its descendants (live ones). */
function treeTicks(root: number): number {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      // utime + stime + cutime + cstime: children that already exited count too.
      ticks.set(
        Number(entry),
        Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      );
    } catch {
      // gone
    }
  }
  let sum = 0;
  for (const [pid, t] of ticks) {
    let cur: number | undefined = pid;
    for (let depth = 0; cur !== undefined && cur > 1 && depth < 64; depth += 1) {
      if (cur === root) {
        sum += t;
        break;
      }
      cur = parents.get(cur);
    }
  }
  return sum;
}

/** Starts sampling every 10 s; `stop()` returns the share other processes used. */
export function watchForeignLoad(): { stop(): ForeignLoad | undefined } {
  if (!fs.existsSync('/proc/stat')) return { stop: () => undefined };
  const cores = os.cpus().length;
  const shares: number[] = [];
  let lastMachine = machineBusyTicks();
  let lastOurs = treeTicks(process.pid);
  let lastAt = Date.now();
  let totalForeign = 0;
  let totalMs = 0;
  const sample = () => {
    const machine = machineBusyTicks();
    const ours = treeTicks(process.pid);
    const now = Date.now();
    const capacity = ((now - lastAt) / 1000) * TICKS_PER_S * cores;
    // Children that exited between samples are in our cutime already; clamp the noise at 0.
    const foreign = Math.max(0, machine - lastMachine - Math.max(0, ours - lastOurs));
    if (capacity > 0) {
      shares.push(foreign / capacity);
      totalForeign += foreign;
      totalMs += now - lastAt;
    }
    lastMachine = machine;
    lastOurs = ours;
    lastAt = now;
  };
  const timer = setInterval(sample, 10_000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const capacity = (totalMs / 1000) * TICKS_PER_S * cores;
      return {
        average: capacity > 0 ? totalForeign / capacity : 0,
        max: shares.length > 0 ? Math.max(...shares) : 0,
        samples: shares.length,
      };
    },
  };
}
