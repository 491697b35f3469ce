/**
 * The `WWW-Authenticate: Bearer` challenge of a resource server (RFC 6750 §3): the daemon reads
 * `resource_metadata` from a 401 (RFC 9728 §5.1), keyward/mcp reads `insufficient_scope` and
 * `scope` from a 403.
 */

/**
 * Parses the parameters of the `Bearer` challenge in a `WWW-Authenticate` header (RFC 6750 §3,
 * RFC 9110 §11.6.1); other schemes in the same header are skipped. Returns undefined without one.
 */
export function parseBearerChallenge(header: string | null): Record<string, string> | undefined {
  if (header === null) return undefined;
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && /[\s,]/.test(header.charAt(i))) i += 1;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header.charAt(i))) i += 1;
    return header.slice(start, i);
  };
  let current: Record<string, string> | undefined;
  let found: Record<string, string> | undefined;
  while (i < n) {
    skipSpace();
    const start = i;
    const name = token();
    if (name === '') {
      i += 1;
      continue;
    }
    let j = i;
    while (j < n && header.charAt(j) === ' ') j += 1;
    if (header.charAt(j) === '=' && header.charAt(j + 1) !== '=') {
      // An auth-param of the current challenge.
      i = j + 1;
      while (i < n && header.charAt(i) === ' ') i += 1;
      let value: string;
      if (header.charAt(i) === '"') {
        i += 1;
        value = '';
        while (i < n && header.charAt(i) !== '"') {
          if (header.charAt(i) === '\\' && i + 1 < n) i += 1;
          value += header.charAt(i);
          i += 1;
        }
        i += 1;
      } else {
        value = token();
      }
      if (current !== undefined) current[name.toLowerCase()] = value;
      continue;
    }
    if (start !== i) {
      // A new challenge (scheme name); a token68 after it is skipped.
      current = {};
      if (name.toLowerCase() === 'bearer' && found === undefined) found = current;
      while (i < n && header.charAt(i) === ' ') i += 1;
      const t68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(,|$))/.exec(header.slice(i));
      if (t68 !== null) i += t68[0].length;
    }
  }
  return found;
}
