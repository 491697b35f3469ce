/**
 * Commands keyward prints for the user to paste (`run: keyward login ...`) may carry text a
 * remote server chose, such as a scope from its `WWW-Authenticate` challenge. Quoting it as one
 * POSIX shell word keeps a pasted command from running anything but keyward.
 */

/**
 * Quotes `value` as one POSIX shell word: inside single quotes nothing is special, and a single
 * quote itself is closed, escaped and reopened (`'\''`).
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** Returns a plain word (such as a valid credential name) as it is, and quotes anything else. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9._-]+$/.test(value) ? value : shellQuote(value);
}
