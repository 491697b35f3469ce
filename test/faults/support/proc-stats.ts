/**
 * Reads another process's resource use from /proc (Linux): resident memory, open file
 * descriptors and CPU time. The fault suite's soak and the benchmarks sample the daemon with it.
 */
import fs from 'node:fs';

/** Tells whether /proc can describe processes here (Linux). */
export const PROC_AVAILABLE = fs.existsSync('/proc/self/status');

/** Returns the resident set size of `pid` in bytes (VmRSS). */
export function readRssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Counts the open file descriptors of `pid` (entries of /proc/<pid>/fd). */
export function countOpenFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

/** Returns the user + system CPU time of `pid` in milliseconds. */
export function readCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are at 11 and 12 once pid and comm are dropped.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}

/** One sample of a process's resources. */
export interface ResourceSample {
  /** Milliseconds since sampling started. */
  atMs: number;
  rssBytes: number;
  fds: number;
}

/** Samples `pid` every `everyMs` until `stop()` is called; returns the samples. */
export function sampleResources(pid: number, everyMs: number): { stop(): ResourceSample[] } {
  const samples: ResourceSample[] = [];
  const started = Date.now();
  const take = (): void => {
    try {
      samples.push({ atMs: Date.now() - started, rssBytes: readRssBytes(pid), fds: countOpenFds(pid) });
    } catch {
      // The process may have just exited; the caller notices that on its own.
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** Fits a least-squares line through (x, y) points and returns its slope (y per x). */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Returns the median of a list of numbers (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
