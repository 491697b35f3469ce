/**
 * What each benchmark section hands the orchestrator: a markdown body for results.md, the
 * issue's targets it checked (met, or the gap), and its raw figures.
 */

/** One target from the issue and how this run fared against it. */
export interface TargetOutcome {
  target: string;
  measured: string;
  /** null when the run could not measure it. */
  met: boolean | null;
  note?: string;
}

/** One section of results.md. */
export interface SectionReport {
  title: string;
  /** Markdown (tables and sentences), without the heading. */
  body: string;
  targets: TargetOutcome[];
  raw: unknown;
}

/** Renders a markdown table. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Returns the median of numbers (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
