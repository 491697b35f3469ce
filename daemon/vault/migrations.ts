/**
 * The vault's schema, as numbered migrations. `PRAGMA user_version` records the last one applied;
 * each runs in its own transaction, so a crash mid-upgrade leaves the previous version intact.
 */
import type Database from 'better-sqlite3';
import { ApiError } from '../api-error.js';

/** One schema step. */
export interface Migration {
  version: number;
  description: string;
  up(db: Database.Database): void;
}

/** Every migration, in order; append only, never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'key record, credentials, sealed secrets, clear settings',
    up(db) {
      db.exec(`
        CREATE TABLE vault_key (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          key_store TEXT NOT NULL CHECK (key_store IN ('file', 'keychain', 'passphrase')),
          wrapped_dek BLOB NOT NULL,
          nonce BLOB NOT NULL,
          params TEXT NOT NULL DEFAULT '{}',
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        ) STRICT;

        -- AUTOINCREMENT: an id is never reused, so a sealed value bound to a removed
        -- credential's id can never open under a later credential.
        CREATE TABLE credentials (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          name TEXT NOT NULL UNIQUE,
          kind TEXT NOT NULL CHECK (kind IN ('api_key', 'oauth')),
          config TEXT NOT NULL DEFAULT '{}',
          state TEXT NOT NULL DEFAULT '{}',
          created_at TEXT NOT NULL,
          updated_at TEXT NOT NULL
        ) STRICT;

        CREATE TABLE secrets (
          credential_id INTEGER NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
          field TEXT NOT NULL,
          nonce BLOB NOT NULL,
          ciphertext BLOB NOT NULL,
          PRIMARY KEY (credential_id, field)
        ) STRICT;

        CREATE TABLE kv (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    description: 'access-control clients: token hashes (never the tokens) and allow lists',
    up(db) {
      // token_hash is SHA-256 of a 256-bit random token: the token itself is shown once and
      // never stored. `allow` is a JSON array of credential names.
      db.exec(`
        CREATE TABLE clients (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          name TEXT NOT NULL UNIQUE,
          token_hash BLOB NOT NULL UNIQUE,
          allow TEXT NOT NULL DEFAULT '[]',
          created_at TEXT NOT NULL,
          last_used_at TEXT
        ) STRICT;
      `);
    },
  },
  {
    version: 3,
    description: 'authenticated clear columns: a version and a MAC per row, and the MACd manifest',
    up(db) {
      // The MACs need the data key, which a passphrase vault does not have yet when it is
      // migrated: rows stay unsealed (mac NULL) until the first open with the key seals them
      // all once (Vault, "seal"), and writing the `integrity` row records that it happened.
      db.exec(`
        ALTER TABLE credentials ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE credentials ADD COLUMN mac BLOB;
        ALTER TABLE clients ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE clients ADD COLUMN mac BLOB;
        ALTER TABLE kv ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE kv ADD COLUMN mac BLOB;
        CREATE TABLE integrity (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          versions TEXT NOT NULL,
          mac BLOB NOT NULL
        ) STRICT;
      `);
    },
  },
];

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Reads the schema version recorded in the database. */
export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Refuses a vault written by a newer keyward, whose schema this build cannot know. */
export function assertKnownSchema(db: Database.Database, file: string): void {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) {
    throw new ApiError(
      'INTERNAL',
      `the vault ${file} has schema version ${version}, newer than this keyward understands ` +
        `(${SCHEMA_VERSION}): upgrade keyward`,
    );
  }
}

/** Applies every migration the database has not seen yet. */
export function migrate(db: Database.Database, file: string): void {
  assertKnownSchema(db, file);
  for (const migration of MIGRATIONS) {
    if (migration.version <= schemaVersion(db)) continue;
    db.transaction(() => {
      migration.up(db);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}
