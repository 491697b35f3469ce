/**
 * The vault's row MACs and manifest at run time (see integrity.ts for what they detect): checks
 * rows as they are read, reseals rows as they are written, and seals a vault's rows once, at the
 * first open with the data key after the upgrade to schema 3.
 */
import type Database from 'better-sqlite3';
import { open, type Sealed, seal, secretAd, wipe } from './crypto.js';
import {
  macMatches,
  manifestKey,
  manifestMac,
  PRIMARY_KEY,
  parseManifest,
  rowMac,
  type SealedTable,
  serializeManifest,
} from './integrity.js';

const SEALED_TABLES: readonly SealedTable[] = ['credentials', 'clients', 'kv'];

/** A row as SQLite returns it. */
export type Row = Record<string, unknown>;

interface SecretRow extends Sealed {
  credential_id: number;
  field: string;
}

/** Thrown inside the sealing transaction to roll it back. */
class AlreadySealed extends Error {}

/** Row MACs and the manifest of one vault connection. */
export class RowIntegrity {
  readonly #db: Database.Database;
  #key: Buffer | undefined;
  /** Each row's current version, as the MAC'd manifest says; this process keeps it current. */
  #versions = new Map<string, number>();
  /** Set when nothing can be trusted: the manifest fails, or a stripped vault was found. */
  #problem: string | undefined;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Tells whether rows can be checked (the data key is known). */
  get ready(): boolean {
    return this.#key !== undefined;
  }

  /**
   * Takes the MAC key (owned from now on) and loads the manifest. A vault without one (made or
   * last written by a keyward before schema 3) has its rows sealed now, once, and every secret
   * resealed under the v2 associated data in the same transaction. Returns how many rows were
   * sealed (0 when the vault was sealed already).
   */
  start(macKey: Buffer, dek: Buffer, upgradeKeyRecord?: () => void): number {
    wipe(this.#key);
    this.#key = macKey;
    this.#problem = undefined;
    if (this.#loadManifest()) {
      upgradeKeyRecord?.();
      return 0;
    }
    // Only a data key still wrapped as keyward 0.1 did (`upgradeKeyRecord` set) proves that the
    // rows were never sealed. With a key wrapped for a sealed vault, a missing manifest means it
    // was removed: sealing now would authenticate whatever was written meanwhile. An empty vault
    // (an init interrupted before its manifest) has nothing to protect and is sealed as new.
    if (upgradeKeyRecord === undefined && !this.#empty()) {
      this.#refuseAll('its data key was wrapped for a vault whose rows carry MACs');
      return 0;
    }
    try {
      return this.#db
        .transaction(() => {
          const count = this.#sealAll(dek);
          upgradeKeyRecord?.();
          return count;
        })
        .immediate();
    } catch (error) {
      if (!(error instanceof AlreadySealed)) throw error;
      this.#refuseAll('its secrets were sealed by a keyward that authenticates them');
      return 0;
    }
  }

  /** Fails every row closed: the vault's integrity record was removed from a vault that had one. */
  #refuseAll(evidence: string): void {
    this.#problem = `the vault has rows without MACs, but ${evidence} (the integrity record was removed)`;
    this.#versions = new Map();
  }

  /** Tells whether no sealed table holds a row. */
  #empty(): boolean {
    return SEALED_TABLES.every(
      (table) => this.#db.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get() === undefined,
    );
  }

  /** Wipes the MAC key. */
  close(): void {
    wipe(this.#key);
    this.#key = undefined;
  }

  /** Re-reads the manifest after a failed transaction may have left the in-memory copy ahead. */
  reload(): void {
    if (this.#key !== undefined) this.#loadManifest();
  }

  /**
   * Returns why a row fails to authenticate, or undefined when it verifies. Only when `ready`.
   */
  check(table: SealedTable, row: Row): string | undefined {
    const key = this.#requireKey();
    if (this.#problem !== undefined) return this.#problem;
    if (row.mac === null || row.mac === undefined) return 'it has no MAC (it was written outside keyward)';
    if (!macMatches(row.mac, rowMac(key, table, row))) {
      return 'its MAC does not match (edited, swapped with another row, or damaged)';
    }
    const expected = this.#versions.get(manifestKey(table, row));
    if (expected !== row.version) {
      return expected === undefined
        ? 'the vault has no record of it'
        : `it is an older copy (version ${String(row.version)}; the vault expects ${expected})`;
    }
    return undefined;
  }

  /** Tells whether the manifest lists a row (so its absence means it was deleted behind our back). */
  expects(table: SealedTable, primaryKey: string | number): boolean {
    return this.#problem !== undefined || this.#versions.has(`${table}/${String(primaryKey)}`);
  }

  /**
   * Seals a row just written in the current transaction: a new version, its MAC, the manifest.
   * A row that was checked before the write keeps its history; a new one starts at 1.
   */
  seal(table: SealedTable, primaryKey: string | number): void {
    const key = this.#requireKey();
    const column = PRIMARY_KEY[table];
    const row = this.#db.prepare(`SELECT * FROM ${table} WHERE ${column} = ?`).get(primaryKey) as Row;
    const name = manifestKey(table, row);
    const version = Math.max(Number(row.version) || 0, this.#versions.get(name) ?? 0) + 1;
    row.version = version;
    this.#db
      .prepare(`UPDATE ${table} SET version = ?, mac = ? WHERE ${column} = ?`)
      .run(version, rowMac(key, table, row), primaryKey);
    this.#versions.set(name, version);
    this.#writeManifest();
  }

  /** Drops a deleted row from the manifest (inside the deleting transaction). */
  forget(table: SealedTable, primaryKey: string | number): void {
    if (this.#key === undefined) return; // deleted while locked: a stale entry names no row
    if (this.#versions.delete(`${table}/${String(primaryKey)}`)) this.#writeManifest();
  }

  #requireKey(): Buffer {
    if (this.#key === undefined) throw new Error('row integrity used before the data key was known');
    return this.#key;
  }

  /** Loads and checks the manifest; false when the vault has none yet. */
  #loadManifest(): boolean {
    const key = this.#requireKey();
    const row = this.#db.prepare('SELECT versions, mac FROM integrity WHERE id = 1').get() as
      | { versions: string; mac: Buffer }
      | undefined;
    if (row === undefined) return false;
    const versions = parseManifest(row.versions);
    if (versions === undefined || !macMatches(row.mac, manifestMac(key, row.versions))) {
      this.#problem = "the vault's integrity manifest failed to authenticate (tampered with or damaged)";
      this.#versions = new Map();
    } else {
      this.#problem = undefined;
      this.#versions = versions;
    }
    return true;
  }

  #writeManifest(): void {
    const serialized = serializeManifest(this.#versions);
    this.#db
      .prepare(
        `INSERT INTO integrity (id, versions, mac) VALUES (1, ?, ?)
           ON CONFLICT (id) DO UPDATE SET versions = excluded.versions, mac = excluded.mac`,
      )
      .run(serialized, manifestMac(this.#requireKey(), serialized));
  }

  /** Seals every row and reseals every secret under the v2 layout (one transaction). */
  #sealAll(dek: Buffer): number {
    const secrets = this.#db
      .prepare('SELECT credential_id, field, nonce, ciphertext FROM secrets')
      .all() as SecretRow[];
    for (const secret of secrets) {
      const plaintext = open(dek, secret, secretAd(secret.credential_id, secret.field, 'v1'));
      if (plaintext === undefined) {
        const current = open(dek, secret, secretAd(secret.credential_id, secret.field, 'v2'));
        wipe(current);
        if (current !== undefined) throw new AlreadySealed();
        continue; // damaged: it stays unreadable, VAULT_CORRUPT for that credential alone
      }
      const sealed = seal(dek, plaintext, secretAd(secret.credential_id, secret.field, 'v2'));
      wipe(plaintext);
      this.#db
        .prepare('UPDATE secrets SET nonce = ?, ciphertext = ? WHERE credential_id = ? AND field = ?')
        .run(sealed.nonce, sealed.ciphertext, secret.credential_id, secret.field);
    }
    this.#versions = new Map();
    let count = 0;
    for (const table of SEALED_TABLES) {
      const column = PRIMARY_KEY[table];
      for (const row of this.#db.prepare(`SELECT ${column} AS pk FROM ${table}`).all() as Array<{
        pk: string | number;
      }>) {
        this.seal(table, row.pk);
        count += 1;
      }
    }
    this.#writeManifest();
    return count;
  }
}
