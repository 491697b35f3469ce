/**
 * Filling the service templates (`systemd/*`, `launchd/*.plist`): `@NAME@` placeholders replaced
 * in one pass, with the quoting each file format needs, so a path with spaces, `%`, `$` or `&`
 * reaches the service manager intact.
 */

/** A template or value the service files cannot carry. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

const PLACEHOLDER = /@([A-Z][A-Z_]*)@/g;

/**
 * Replaces every `@NAME@` in `template` with `values[NAME]`. A line holding only a placeholder
 * whose value is empty is dropped, so optional blocks leave no blank line. Values are inserted
 * verbatim (quote them first) and never rescanned; an unknown placeholder is a bug and throws.
 */
export function fillTemplate(template: string, values: Record<string, string>): string {
  const lines = template.split('\n').filter((line) => {
    const only = /^\s*@([A-Z][A-Z_]*)@\s*$/.exec(line);
    return !(only?.[1] !== undefined && values[only[1]] === '');
  });
  return lines.join('\n').replace(PLACEHOLDER, (match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new TemplateError(`the template has a placeholder ${match} nobody fills`);
    return value;
  });
}

function refuseControlCharacters(value: string, what: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new TemplateError(`${what} contains a control character (a newline?): ${JSON.stringify(value)}`);
  }
}

/** Escapes `%` so systemd does not read it as a specifier (systemd.unit(5) "Specifiers"). */
function escapeSpecifiers(value: string): string {
  return value.replaceAll('%', '%%');
}

/**
 * Quotes one word for a systemd setting that splits on whitespace and unquotes (`ExecStart=`,
 * `ReadWritePaths=`, `Environment=`). With `commandArgument`, `$` is doubled: systemd expands
 * variables in a command's arguments, though not in the program path (systemd.service(5)
 * "Command lines").
 */
export function systemdWord(value: string, what: string, opts: { commandArgument?: boolean } = {}): string {
  refuseControlCharacters(value, what);
  let escaped = escapeSpecifiers(value.replaceAll('\\', '\\\\').replaceAll('"', '\\"'));
  if (opts.commandArgument) escaped = escaped.replaceAll('$', '$$$$');
  return `"${escaped}"`;
}

/**
 * Quotes a command's program path for `ExecStart=`: taken literally (no `$` expansion), and
 * systemd refuses quotes and backslashes in it outright, so those are refused here with the reason.
 */
export function systemdProgram(value: string, what: string): string {
  if (/["'\\]/.test(value)) {
    throw new TemplateError(
      `${what} ${value} holds a quote or a backslash, which systemd refuses in a program path: install it under a plainer path`,
    );
  }
  return systemdWord(value, what);
}

/** Renders a value that systemd takes as the rest of the line (`ListenStream=` with a path). */
export function systemdLineValue(value: string, what: string): string {
  refuseControlCharacters(value, what);
  if (value.trim() !== value)
    throw new TemplateError(`${what} starts or ends with white space: ${JSON.stringify(value)}`);
  return escapeSpecifiers(value);
}

/** Renders `Environment=` lines for the given variables, one per line. */
export function systemdEnvironment(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => `Environment=${systemdWord(`${name}=${value}`, name)}`)
    .join('\n');
}

/** Escapes text for an XML element (a plist `<string>`). */
export function xmlText(value: string, what: string): string {
  // XML 1.0 cannot carry most control characters at all, and a path has no business holding one.
  refuseControlCharacters(value, what);
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/** Renders a plist `EnvironmentVariables` dictionary, or nothing when there are no variables. */
export function plistEnvironment(vars: Record<string, string>): string {
  const entries = Object.entries(vars);
  if (entries.length === 0) return '';
  const body = entries
    .map(
      ([name, value]) =>
        `    <key>${xmlText(name, name)}</key>\n    <string>${xmlText(value, name)}</string>`,
    )
    .join('\n');
  return `  <key>EnvironmentVariables</key>\n  <dict>\n${body}\n  </dict>`;
}
