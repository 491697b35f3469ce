/** Reads the daemon's JSON log lines (pino on stderr) for what the benchmarks count. */

/** One parsed log line; only the fields the benchmarks read. */
export interface LogLine {
  msg?: string;
  reason?: string;
  credential?: string;
  duration_ms?: number;
  time?: number;
  [key: string]: unknown;
}

/** Parses the JSON lines in `text`, skipping anything that is not one. */
export function parseLog(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(raw) as LogLine);
    } catch {
      // A line cut by a kill, or not JSON.
    }
  }
  return lines;
}

/** Counts the `token refreshed` lines by their `reason` (expiring, proactive, invalidated). */
export function refreshesByReason(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of parseLog(text)) {
    if (line.msg !== 'token refreshed') continue;
    const reason = String(line.reason ?? 'unknown');
    counts[reason] = (counts[reason] ?? 0) + 1;
  }
  return counts;
}
