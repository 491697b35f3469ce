/** OAuth scope strings (RFC 6749 §3.3: scope-tokens separated by spaces), shared by daemon and SDK. */

/** Splits a scope string into its scope-tokens. */
export function scopeTokens(scope: string | null | undefined): string[] {
  return (scope ?? '').split(' ').filter((token) => token !== '');
}

/** Returns the union of scope strings or token lists, in first-seen order; null when it is empty. */
export function unionScopes(...scopes: Array<string | readonly string[] | null | undefined>): string | null {
  const all = new Set<string>();
  for (const scope of scopes) {
    for (const token of typeof scope === 'string' || scope == null ? scopeTokens(scope) : scope) {
      if (token !== '') all.add(token);
    }
  }
  return all.size > 0 ? [...all].join(' ') : null;
}
