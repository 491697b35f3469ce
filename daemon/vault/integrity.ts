/**
 * Authenticated clear columns (architecture.md "v2 additions"). Names, kinds, OAuth configuration,
 * lifecycle state, client allow lists and token hashes, and settings such as the policy stay in
 * clear (status reads them without a key), but the daemon acts on them, so each row carries a MAC
 * under a subkey of the data key over its table, primary key, per-row version and every column
 * the daemon acts on. A vault-wide manifest, itself MAC'd, records each row's current version.
 *
 * What this detects: a row edited, swapped with another (names exchanged), copied onto another
 * row, inserted or stripped of its MAC, deleted while the manifest still lists it, or put back
 * from an older copy of the vault (its version is behind the manifest's). What it cannot detect:
 * the whole vault.db rolled back to an older copy (old rows with their old manifest are a
 * consistent, genuinely once-valid vault); only state kept outside the file could tell, and
 * keyward keeps none. An older manifest put back with some of its rows makes the rows that
 * changed since then fail instead.
 */
import sodium from 'sodium-native';

/** The tables whose rows carry a MAC. */
export type SealedTable = 'credentials' | 'clients' | 'kv';

/**
 * The columns each table's MAC covers, in MAC order. Config and state are JSON serializations
 * covered whole, so a field added to them later is covered without a change here. A column added
 * to a table by a migration must be listed here or in UNAUTHENTICATED_COLUMNS (a test checks).
 */
export const AUTHENTICATED_COLUMNS: Readonly<Record<SealedTable, readonly string[]>> = {
  credentials: ['id', 'version', 'name', 'kind', 'config', 'state', 'created_at', 'updated_at'],
  clients: ['id', 'version', 'name', 'token_hash', 'allow', 'created_at'],
  kv: ['key', 'version', 'value'],
};

/**
 * Columns left out of the MAC, with why: `mac` holds it; a client's `last_used_at` is display
 * only and is written on the token path once a minute, where a reseal would cost a manifest write.
 */
export const UNAUTHENTICATED_COLUMNS: Readonly<Record<SealedTable, readonly string[]>> = {
  credentials: ['mac'],
  clients: ['mac', 'last_used_at'],
  kv: ['mac'],
};

/** The column that names a row in the manifest. */
export const PRIMARY_KEY: Readonly<Record<SealedTable, string>> = {
  credentials: 'id',
  clients: 'id',
  kv: 'key',
};

/** The purpose string of the MAC subkey (crypto_kdf context, see deriveSubkey). */
export const MAC_KEY_PURPOSE = 'clear-columns';

const MAC_BYTES = 32;
const ROW_DOMAIN = 'keyward/row-mac/v1';
const MANIFEST_DOMAIN = 'keyward/manifest/v1';

/** Returns a row's name in the manifest: table and primary key. */
export function manifestKey(table: SealedTable, row: Record<string, unknown>): string {
  return `${table}/${String(row[PRIMARY_KEY[table]])}`;
}

function lengthPrefixed(bytes: Buffer): Buffer[] {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length);
  return [length, bytes];
}

/** Encodes one column value with a type tag, so `1` and `'1'`, or null and '' never collide. */
function encodeValue(value: unknown): Buffer[] {
  if (value === null || value === undefined) return [Buffer.from('n')];
  if (typeof value === 'number' || typeof value === 'bigint') {
    return [Buffer.from('i'), ...lengthPrefixed(Buffer.from(String(value), 'utf8'))];
  }
  if (typeof value === 'string') return [Buffer.from('s'), ...lengthPrefixed(Buffer.from(value, 'utf8'))];
  if (value instanceof Uint8Array) return [Buffer.from('b'), ...lengthPrefixed(Buffer.from(value))];
  throw new TypeError(`cannot authenticate a column of type ${typeof value}`);
}

function mac(key: Uint8Array, message: Buffer): Buffer {
  const out = Buffer.alloc(MAC_BYTES);
  sodium.crypto_generichash(out, message, key);
  return out;
}

/** Computes a row's MAC (keyed BLAKE2b) over its table and every authenticated column. */
export function rowMac(key: Uint8Array, table: SealedTable, row: Record<string, unknown>): Buffer {
  const parts: Buffer[] = [...lengthPrefixed(Buffer.from(ROW_DOMAIN)), ...lengthPrefixed(Buffer.from(table))];
  for (const column of AUTHENTICATED_COLUMNS[table]) {
    parts.push(...lengthPrefixed(Buffer.from(column)), ...encodeValue(row[column]));
  }
  return mac(key, Buffer.concat(parts));
}

/** Tells, in constant time, whether a stored MAC matches the expected one. */
export function macMatches(stored: unknown, expected: Buffer): boolean {
  if (!(stored instanceof Uint8Array) || stored.length !== expected.length) return false;
  return sodium.sodium_memcmp(stored, expected);
}

/** Serializes a manifest canonically (sorted keys), as it is stored and MAC'd. */
export function serializeManifest(versions: ReadonlyMap<string, number>): string {
  const sorted = [...versions.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(sorted));
}

/** Computes the manifest's MAC. */
export function manifestMac(key: Uint8Array, serialized: string): Buffer {
  return mac(key, Buffer.concat([...lengthPrefixed(Buffer.from(MANIFEST_DOMAIN)), Buffer.from(serialized)]));
}

/** Parses a stored manifest; undefined when it is not a map of names to versions. */
export function parseManifest(serialized: string): Map<string, number> | undefined {
  try {
    const value: unknown = JSON.parse(serialized);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    const versions = new Map<string, number>();
    for (const [name, version] of Object.entries(value)) {
      if (!Number.isSafeInteger(version)) return undefined;
      versions.set(name, version as number);
    }
    return versions;
  } catch {
    return undefined;
  }
}
