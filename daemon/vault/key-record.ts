/**
 * The vault's key record: the one `vault_key` row holding the data key wrapped by the KEK, and
 * the clear parameters of the key store that holds the KEK.
 */
import type Database from 'better-sqlite3';
import { ApiError } from '../api-error.js';
import { dekAd, KEY_BYTES, open, type Sealed, seal, wipe } from './crypto.js';
import {
  type CurrentKeyStore,
  KEY_STORE_KINDS,
  type KekCandidate,
  type KeyStoreKind,
} from './key-stores/index.js';
import { parseObject } from './records.js';

/** The vault_key row. */
export interface KeyRow {
  key_store: KeyStoreKind;
  wrapped_dek: Buffer;
  nonce: Buffer;
  params: string;
}

/** Reads the key record, or explains why the vault has none. */
export function readKeyRow(db: Database.Database, file: string): KeyRow {
  const row = db.prepare('SELECT key_store, wrapped_dek, nonce, params FROM vault_key WHERE id = 1').get() as
    | KeyRow
    | undefined;
  if (row === undefined || !KEY_STORE_KINDS.includes(row.key_store)) {
    throw new ApiError(
      'VAULT_CORRUPT',
      `the vault ${file} has no valid key record (an interrupted keyward init, or damage): ` +
        'move it away and run: keyward init, or restore it from a backup',
    );
  }
  return row;
}

/** The key store the record names, with its parameters. */
export function currentOf(row: KeyRow): CurrentKeyStore {
  return { kind: row.key_store, params: parseObject(row.params) };
}

/** Writes the key record: insert on create, update on rewrap, both in one statement. */
export function writeKeyRow(
  db: Database.Database,
  kind: KeyStoreKind,
  wrapped: { nonce: Buffer; ciphertext: Buffer },
  params: Record<string, unknown>,
): void {
  const now = new Date().toISOString();
  db.prepare(
    `INSERT INTO vault_key (id, key_store, wrapped_dek, nonce, params, created_at, updated_at)
     VALUES (1, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET key_store = excluded.key_store, wrapped_dek = excluded.wrapped_dek,
       nonce = excluded.nonce, params = excluded.params, updated_at = excluded.updated_at`,
  ).run(kind, wrapped.ciphertext, wrapped.nonce, JSON.stringify(params), now, now);
}

/** Replaces the wrapped data key, keeping the key store and its parameters. */
export function rewrapKeyRow(db: Database.Database, wrapped: Sealed): void {
  db.prepare('UPDATE vault_key SET wrapped_dek = ?, nonce = ?, updated_at = ? WHERE id = 1').run(
    wrapped.ciphertext,
    wrapped.nonce,
    new Date().toISOString(),
  );
}

/** The unwrapped data key, and for a vault wrapped as keyward 0.1 did, the same key wrapped anew. */
export interface UnwrappedDek {
  dek: Buffer;
  /** Set when the key was wrapped under the `v1` layout: the `rows-sealed` wrap to store once sealed. */
  legacyRewrap?: Sealed;
}

/**
 * Tries each candidate KEK against the wrapped data key, under the current layout and then the
 * `v1` one; adopts a staged key that turned out to be the live one (an interrupted rewrap). Every
 * KEK is wiped before returning.
 */
export async function unwrapDek(row: KeyRow, candidates: KekCandidate[]): Promise<UnwrappedDek | undefined> {
  try {
    const wrapped = { nonce: row.nonce, ciphertext: row.wrapped_dek };
    for (const candidate of candidates) {
      let dek = open(candidate.kek, wrapped, dekAd('rows-sealed'));
      let legacyRewrap: Sealed | undefined;
      if (dek === undefined) {
        dek = open(candidate.kek, wrapped, dekAd('v1'));
        if (dek === undefined) continue;
        if (dek.length === KEY_BYTES) legacyRewrap = seal(candidate.kek, dek, dekAd('rows-sealed'));
      }
      if (dek.length !== KEY_BYTES) {
        wipe(dek);
        return undefined;
      }
      await candidate.adopt?.();
      return legacyRewrap === undefined ? { dek } : { dek, legacyRewrap };
    }
    return undefined;
  } finally {
    for (const candidate of candidates) wipe(candidate.kek);
  }
}
