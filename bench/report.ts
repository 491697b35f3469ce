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
