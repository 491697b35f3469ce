/** Credential (and client) names: contract.md "CLI". */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Tells whether `name` is a valid credential or client name. */
export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

/** Explains the name rule, for error messages. */
export const NAME_RULE =
  'names are 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit';
