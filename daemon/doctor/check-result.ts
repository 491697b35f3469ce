/** What one `keyward doctor` check found. */

/** `ok` passes, `warn` passes with advice, `fail` makes doctor exit 1. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One check's finding: what was checked, what was found, and for a problem, the fix. */
export interface CheckResult {
  /** A stable identifier for scripts (`daemon`, `home`, `credential:github`, ...). */
  id: string;
  status: CheckStatus;
  /** What was checked, for the human line (`socket directory`). */
  title: string;
  /** What was found. */
  message: string;
  /** What to do about it; present on every `fail` and `warn`. */
  fix?: string;
}

/** Builds a passing result. */
export function ok(id: string, title: string, message: string): CheckResult {
  return { id, status: 'ok', title, message };
}

/** Builds a failing result with its fix. */
export function fail(id: string, title: string, message: string, fix: string): CheckResult {
  return { id, status: 'fail', title, message, fix };
}

/** Builds a warning with its advice. */
export function warn(id: string, title: string, message: string, fix: string): CheckResult {
  return { id, status: 'warn', title, message, fix };
}
