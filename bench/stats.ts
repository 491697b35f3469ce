/**
 * Latency statistics for the benchmarks: percentiles over raw samples, kept in nanoseconds and
 * reported in microseconds, so a run prints the same figures results.md records.
 */

/** Percentiles of one series, in microseconds. */
export interface LatencySummary {
  n: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

/** A growable buffer of samples in nanoseconds. */
export class Samples {
  #data = new Float64Array(1 << 16);
  #length = 0;

  /** Appends one sample. */
  push(ns: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length] = ns;
    this.#length += 1;
  }

  get length(): number {
    return this.#length;
  }

  /** Summarises the samples (nearest-rank percentiles). */
  summarize(): LatencySummary {
    return summarize(this.#data.subarray(0, this.#length));
  }
}

/** Summarises samples given in nanoseconds. */
export function summarize(samplesNs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesNs).sort();
  const n = sorted.length;
  const at = (q: number): number =>
    n === 0 ? Number.NaN : (sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] ?? 0) / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n,
    p50Us: at(0.5),
    p90Us: at(0.9),
    p99Us: at(0.99),
    p999Us: at(0.999),
    maxUs: n === 0 ? Number.NaN : (sorted[n - 1] ?? 0) / 1000,
    meanUs: n === 0 ? Number.NaN : sum / n / 1000,
  };
}

/** Formats microseconds for a table: µs below 10 ms, ms above. */
export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us < 10_000) return `${us.toFixed(us < 100 ? 1 : 0)} µs`;
  return `${(us / 1000).toFixed(us < 100_000 ? 1 : 0)} ms`;
}

/** Formats a ratio such as 1.73×. */
export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}

/** Formats a count with thousands separators. */
export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** Formats bytes as MiB with one decimal. */
export function fmtMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Formats a size in bytes as KiB below 1 MiB, MiB above. */
export function fmtBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : fmtMiB(bytes);
}
