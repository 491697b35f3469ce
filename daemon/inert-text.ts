/**
 * Inert output (contract.md "Security (v2)"): text that callers choose (a peer's executable path,
 * client and credential names, an authorization server's scope or error) must not drive the
 * terminal it is printed on. Every control character (C0, DEL, C1) and the Unicode line and
 * direction overrides are shown as a `\uXXXX` escape instead: visible to a reader, inert to a
 * terminal, and, inside a JSON string, the same JSON escape that reads back as the original.
 */

/** C0 controls other than newline, DEL, C1 controls, line/paragraph separators, bidi overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
const KEEP_NL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same with newline: for one table cell or one field, where a newline would fake a row. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(ch: string): string {
  return `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`;
}

/** Escapes every control character but newline: for whole lines of output and JSON text. */
export function inertText(text: string): string {
  return text.replace(KEEP_NL, escapeChar);
}

/** Escapes every control character, newline included: for one field of a table or a sentence. */
export function inertField(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}
