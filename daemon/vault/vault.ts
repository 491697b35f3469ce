/**
 * The vault (architecture.md "Vault"): credentials in SQLite, every secret field sealed with
 * XChaCha20-Poly1305 under a data key (DEK) that is itself stored only wrapped by a key-encryption
 * key (KEK) from a key store. Names, kinds, config and lifecycle state stay in clear by design,
 * but every clear row the daemon acts on carries a MAC under a subkey of the data key, checked as
 * it is read (row-integrity.ts): a row edited, swapped or rolled back offline is VAULT_CORRUPT.
 */
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { isValidName, NAME_RULE } from '../../shared/names.js';
import type { KeywardPaths } from '../../shared/paths.js';
import type { CredentialKind } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';
import { checkPrivateDir, checkPrivateFile, ensurePrivateDir, writePrivateFile } from '../fs-safety.js';
import { Secret } from '../secret.js';
import { dekAd, deriveSubkey, open, randomKey, type Sealed, seal, secretAd, wipe } from './crypto.js';
import { openReadOnly, openWritable, sidecars, tightenSidecars } from './database.js';
import { MAC_KEY_PURPOSE, type SealedTable } from './integrity.js';
import {
  currentOf,
  readKeyRow,
  rewrapKeyRow,
  type UnwrappedDek,
  unwrapDek,
  writeKeyRow,
} from './key-record.js';
import { type KeyStoreKind, keyStoreFor, resolveKeyStoreKind } from './key-stores/index.js';
import { assertKnownSchema, migrate } from './migrations.js';
import {
  alreadyExists,
  assertField,
  type CredentialRecord,
  type CredentialRow,
  isUniqueViolation,
  listRows,
  notFound,
  parseObject,
  toRecord,
} from './records.js';
import { type Row, RowIntegrity } from './row-integrity.js';

export type { KeyStoreKind } from './key-stores/index.js';
export type { CredentialRecord } from './records.js';

/** A client row as the vault keeps it, and why it fails to authenticate ('locked': not checked yet). */
export interface ClientRowCheck {
  row: { name: string; token_hash: Buffer; allow: string; created_at: string; last_used_at: string | null };
  problem: string | undefined;
}

/** What `rewrap` left behind: a sentence naming old key material it could not remove, or null. */
export interface RewrapResult {
  leftover: string | null;
}

function removeVaultFiles(file: string): void {
  for (const target of [file, ...sidecars(file)]) fs.rmSync(target, { force: true });
}

/** The encrypted credential store. */
export class Vault {
  /** The vault.db path. */
  readonly path: string;
  readonly #paths: KeywardPaths;
  readonly #db: Database.Database;
  /** Prepared statements by SQL text: preparing costs more than running, on every token request. */
  readonly #statements = new Map<string, Database.Statement>();
  /**
   * Credential rows by name, read on every token request. This daemon is the vault's only writer
   * of credentials, so an entry is dropped on each write to it and is otherwise current.
   */
  readonly #records = new Map<string, CredentialRecord>();
  readonly #integrity: RowIntegrity;
  #keyStore: KeyStoreKind;
  #dek: Buffer | undefined;
  #closed = false;

  private constructor(
    paths: KeywardPaths,
    db: Database.Database,
    keyStore: KeyStoreKind,
    dek: Buffer | undefined,
  ) {
    this.path = paths.vault;
    this.#paths = paths;
    this.#db = db;
    this.#keyStore = keyStore;
    this.#integrity = new RowIntegrity(db);
    this.#dek = dek;
    if (dek !== undefined) this.#keyArrived({ dek });
  }

  /**
   * How many rows the first open with the data key sealed (a vault upgraded from schema 2), so
   * the daemon can say so once; 0 otherwise.
   */
  sealedOnOpen = 0;

  /** Tells whether a vault file exists at the home's vault path (even a damaged one). */
  static exists(paths: KeywardPaths): boolean {
    return fs.lstatSync(paths.vault, { throwIfNoEntry: false }) !== undefined;
  }

  /**
   * Creates a new vault with a fresh data key wrapped by the chosen key store (`auto`: the OS
   * keychain when it works here, else the key file). A passphrase vault is returned unlocked.
   */
  static async create(
    paths: KeywardPaths,
    opts: { keyStore: 'auto' | KeyStoreKind; passphrase?: Secret },
  ): Promise<Vault> {
    ensurePrivateDir(paths.home);
    const vaultExists = () =>
      new ApiError(
        'ALREADY_EXISTS',
        `a vault already exists at ${paths.vault}: keyward init only makes a new one`,
      );
    if (Vault.exists(paths)) throw vaultExists();
    const kind = await resolveKeyStoreKind(opts.keyStore);
    if (kind === 'passphrase' && (opts.passphrase === undefined || opts.passphrase.length === 0)) {
      throw new ApiError('INVALID_REQUEST', 'a passphrase vault needs a non-empty passphrase');
    }
    // Claim the path with an exclusive 0600 create: two concurrent inits cannot both win, and
    // SQLite gives -wal and -shm the database file's mode.
    try {
      writePrivateFile(paths.vault, Buffer.alloc(0), { exclusive: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw vaultExists();
      throw error;
    }
    const store = keyStoreFor(kind, paths);
    let db: Database.Database | undefined;
    let dek: Buffer | undefined;
    let staged: Awaited<ReturnType<typeof store.provision>> | undefined;
    try {
      db = openWritable(paths.vault);
      migrate(db, paths.vault);
      dek = randomKey();
      staged = await store.provision({ passphrase: opts.passphrase });
      const wrapped = seal(staged.kek, dek, dekAd());
      wipe(staged.kek);
      writeKeyRow(db, kind, wrapped, staged.params);
      await staged.commit();
      tightenSidecars(paths.vault);
    } catch (error) {
      db?.close();
      if (staged !== undefined) {
        wipe(staged.kek);
        await staged.abort().catch(() => {});
      }
      wipe(dek);
      // Leave nothing half-made behind, so `keyward init` can simply be run again.
      removeVaultFiles(paths.vault);
      throw error;
    }
    return new Vault(paths, db, kind, dek);
  }

  /**
   * Opens an existing vault after checking the home and vault files are private. File and
   * keychain vaults come back unlocked; a passphrase vault comes back locked.
   */
  static async open(paths: KeywardPaths): Promise<Vault> {
    checkPrivateDir(paths.home);
    if (!Vault.exists(paths)) {
      throw new ApiError('NOT_FOUND', `no vault at ${paths.vault}: run: keyward init`);
    }
    checkPrivateFile(paths.vault);
    for (const sidecar of sidecars(paths.vault)) {
      if (fs.lstatSync(sidecar, { throwIfNoEntry: false })) checkPrivateFile(sidecar);
    }
    // An empty file is an interrupted init: say so rather than migrate it into a keyless vault.
    if (fs.statSync(paths.vault).size === 0) openReadOnly(paths.vault).close();
    const db = openWritable(paths.vault);
    try {
      migrate(db, paths.vault);
      tightenSidecars(paths.vault);
      const row = readKeyRow(db, paths.vault);
      const vault = new Vault(paths, db, row.key_store, undefined);
      if (row.key_store !== 'passphrase') {
        const store = keyStoreFor(row.key_store, paths);
        const candidates = await store.load(parseObject(row.params));
        const unwrapped = await unwrapDek(row, candidates);
        if (unwrapped === undefined) {
          throw new ApiError(
            'VAULT_CORRUPT',
            `${store.describe(parseObject(row.params))} does not open the vault ${paths.vault} ` +
              "(a key from another vault, or the vault's key record is damaged): restore the matching key from a backup",
          );
        }
        vault.#dek = unwrapped.dek;
        vault.#keyArrived(unwrapped);
      }
      return vault;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * Reads the key store kind and every credential's clear metadata without any key, for
   * `keyward status` while the daemon is down. Creates and modifies nothing.
   */
  static readMetadata(paths: KeywardPaths): { keyStore: KeyStoreKind; credentials: CredentialRecord[] } {
    if (!Vault.exists(paths)) {
      throw new ApiError('NOT_FOUND', `no vault at ${paths.vault}: run: keyward init`);
    }
    const db = openReadOnly(paths.vault);
    try {
      assertKnownSchema(db, paths.vault);
      const row = readKeyRow(db, paths.vault);
      return { keyStore: row.key_store, credentials: listRows(db) };
    } finally {
      db.close();
    }
  }

  /** The kind of key store that holds the KEK. */
  get keyStore(): KeyStoreKind {
    return this.#keyStore;
  }

  /** Tells whether secrets are out of reach until `unlock` (a passphrase vault not yet unlocked). */
  get locked(): boolean {
    return this.#dek === undefined;
  }

  /**
   * Unlocks a passphrase vault: derives the KEK (Argon2id, off the event loop) and unwraps the
   * data key. A wrong passphrase throws VAULT_LOCKED and changes nothing. A no-op when unlocked.
   */
  async unlock(passphrase: Secret): Promise<void> {
    this.#assertOpen();
    if (this.#dek !== undefined) return;
    const row = readKeyRow(this.#db, this.path);
    const candidates = await keyStoreFor(row.key_store, this.#paths).load(
      parseObject(row.params),
      passphrase,
    );
    const unwrapped = await unwrapDek(row, candidates);
    if (unwrapped === undefined) {
      throw new ApiError(
        'VAULT_LOCKED',
        'wrong passphrase: the vault stays locked; to try again run: keyward unlock',
      );
    }
    if (this.#closed || this.#dek !== undefined) {
      wipe(unwrapped.dek);
      this.#assertOpen();
      return;
    }
    this.#dek = unwrapped.dek;
    this.#keyArrived(unwrapped);
  }

  /**
   * Lists every credential, by name. A row that fails to authenticate is listed under the name it
   * shows, in state `error` with a VAULT_CORRUPT last error, and none of its configuration.
   */
  listCredentials(): CredentialRecord[] {
    this.#assertOpen();
    if (!this.#integrity.ready) return listRows(this.#db);
    const rows = this.#statement('SELECT * FROM credentials ORDER BY name').all() as CredentialRow[];
    return rows.map((row) => {
      const problem = this.#integrity.check('credentials', row as unknown as Row);
      if (problem === undefined) return toRecord(row);
      const error = corruptRow(row.name, problem);
      return {
        ...toRecord({ ...row, config: '{}', state: '{}' }),
        kind: row.kind === 'oauth' ? 'oauth' : 'api_key',
        state: {
          state: 'error',
          last_error: { code: error.code, message: error.message, at: new Date().toISOString() },
        },
      };
    });
  }

  /**
   * Returns one credential's record, or undefined. VAULT_CORRUPT when its row fails to
   * authenticate. While a passphrase vault is locked the row cannot be checked yet: it is
   * returned for display, and everything that acts on it needs the key first.
   */
  getCredential(name: string): CredentialRecord | undefined {
    this.#assertOpen();
    const cached = this.#records.get(name);
    if (cached !== undefined) return cached;
    const row = this.#statement('SELECT * FROM credentials WHERE name = ?').get(name) as
      | CredentialRow
      | undefined;
    if (row === undefined) return undefined;
    this.#assertAuthentic('credentials', row);
    // Verified once, then served from memory until the next write through this vault replaces
    // it: the token path costs no MAC. Frozen, because every caller shares it.
    const record = toRecord(row);
    Object.freeze(record.config);
    Object.freeze(record.state);
    Object.freeze(record);
    this.#records.set(name, record);
    return record;
  }

  /** Adds a credential and its sealed secrets in one transaction; ALREADY_EXISTS on a taken name. */
  insertCredential(input: {
    name: string;
    kind: CredentialKind;
    config: Record<string, unknown>;
    state?: Record<string, unknown>;
    secrets: Record<string, Secret>;
  }): CredentialRecord {
    this.#assertOpen();
    if (!isValidName(input.name)) {
      throw new ApiError('INVALID_REQUEST', `invalid credential name "${input.name}": ${NAME_RULE}`);
    }
    if (input.kind !== 'api_key' && input.kind !== 'oauth') {
      throw new ApiError(
        'INVALID_REQUEST',
        `invalid credential kind "${String(input.kind)}": use api_key or oauth`,
      );
    }
    const secrets = Object.entries(input.secrets);
    for (const [field] of secrets) assertField(field);
    // Even without secrets: the row's MAC needs the data key.
    this.#requireDek();
    const now = new Date().toISOString();
    return this.#write(() => {
      let id: number;
      try {
        const result = this.#statement(
          `INSERT INTO credentials (name, kind, config, state, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(
          input.name,
          input.kind,
          JSON.stringify(input.config),
          JSON.stringify(input.state ?? {}),
          now,
          now,
        );
        id = Number(result.lastInsertRowid);
      } catch (error) {
        if (isUniqueViolation(error)) throw alreadyExists(input.name);
        throw error;
      }
      this.#integrity.seal('credentials', id);
      for (const [field, secret] of secrets) this.#writeSecret(id, field, secret);
      return this.#recordById(id);
    });
  }

  /**
   * Updates a credential in one transaction: config and state are shallow-merged, each secret is
   * resealed (a null one deleted). The refresh engine relies on a rotated refresh token and the
   * new access token committing together. NOT_FOUND when the name is unknown.
   */
  updateCredential(
    name: string,
    patch: {
      config?: Record<string, unknown>;
      state?: Record<string, unknown>;
      secrets?: Record<string, Secret | null>;
    },
  ): CredentialRecord {
    this.#assertOpen();
    const secrets = Object.entries(patch.secrets ?? {});
    for (const [field] of secrets) assertField(field);
    this.#requireDek();
    this.#records.delete(name);
    return this.#write(() => {
      const row = this.#statement('SELECT * FROM credentials WHERE name = ?').get(name) as
        | CredentialRow
        | undefined;
      if (row === undefined) throw notFound(name);
      // Checked before the merge: resealing an edited row would launder the edit.
      this.#assertAuthentic('credentials', row);
      const config = { ...parseObject(row.config), ...patch.config };
      const state = { ...parseObject(row.state), ...patch.state };
      this.#statement('UPDATE credentials SET config = ?, state = ?, updated_at = ? WHERE id = ?').run(
        JSON.stringify(config),
        JSON.stringify(state),
        new Date().toISOString(),
        row.id,
      );
      this.#integrity.seal('credentials', row.id);
      for (const [field, secret] of secrets) {
        if (secret === null) {
          this.#statement('DELETE FROM secrets WHERE credential_id = ? AND field = ?').run(row.id, field);
        } else {
          this.#writeSecret(row.id, field, secret);
        }
      }
      return this.#recordById(row.id);
    });
  }

  /**
   * Opens one secret field of a credential, or returns undefined when it has none.
   * VAULT_LOCKED while locked; VAULT_CORRUPT when the sealed value fails to authenticate
   * (tampered, damaged, or moved from another row or field).
   */
  readSecret(record: CredentialRecord, field: string): Secret | undefined {
    this.#assertOpen();
    const dek = this.#requireDek();
    const row = this.#statement(
      'SELECT nonce, ciphertext FROM secrets WHERE credential_id = ? AND field = ?',
    ).get(record.id, field) as Sealed | undefined;
    if (row === undefined) return undefined;
    const plaintext = open(dek, row, secretAd(record.id, field));
    if (plaintext === undefined) {
      throw new ApiError(
        'VAULT_CORRUPT',
        `the stored ${field} of credential "${record.name}" failed to authenticate (tampered with or damaged); ` +
          `other credentials are unaffected: run: keyward remove ${record.name}, then add it again (or run: keyward login ${record.name})`,
      );
    }
    return Secret.fromBytes(plaintext, true);
  }

  /**
   * Deletes a credential and its secrets, whether or not its row authenticates (so a damaged one
   * can be removed); tells whether it existed. Works while locked: nothing is served from a row
   * that is gone.
   */
  removeCredential(name: string): boolean {
    this.#assertOpen();
    this.#records.delete(name);
    return this.#write(() => {
      const row = this.#statement('SELECT id FROM credentials WHERE name = ?').get(name) as
        | { id: number }
        | undefined;
      if (row === undefined) return false;
      this.#statement('DELETE FROM credentials WHERE id = ?').run(row.id);
      this.#integrity.forget('credentials', row.id);
      return true;
    });
  }

  /**
   * Reads a clear setting (policy and the like). VAULT_LOCKED while locked (it cannot be checked);
   * VAULT_CORRUPT when its row fails to authenticate or was deleted behind the daemon's back.
   */
  getSetting(key: string): string | undefined {
    this.#assertOpen();
    this.#requireDek();
    const row = this.#statement('SELECT * FROM kv WHERE key = ?').get(key) as
      | { key: string; value: string }
      | undefined;
    if (row === undefined) {
      if (this.#integrity.expects('kv', key)) throw corruptSetting(key, 'its row was deleted');
      return undefined;
    }
    const problem = this.#integrity.check('kv', row);
    if (problem !== undefined) throw corruptSetting(key, problem);
    return row.value;
  }

  /** Writes a clear setting (authenticated, not encrypted: never store a secret here). */
  setSetting(key: string, value: string): void {
    this.#assertOpen();
    this.#requireDek();
    this.#write(() => {
      this.#statement(
        'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value);
      this.#integrity.seal('kv', key);
    });
  }

  /**
   * Reads every client row, each with why it fails to authenticate: undefined when it verifies,
   * 'locked' while a passphrase vault is locked and rows cannot be checked yet.
   */
  readClientRows(): ClientRowCheck[] {
    this.#assertOpen();
    const rows = this.#statement('SELECT * FROM clients ORDER BY name').all() as Array<
      ClientRowCheck['row'] & Row
    >;
    return rows.map((row) => ({
      row,
      problem: this.#integrity.ready ? this.#integrity.check('clients', row) : 'locked',
    }));
  }

  /** Inserts a client row, sealed (VAULT_LOCKED while locked: its MAC needs the data key). */
  insertClient(row: { name: string; token_hash: Buffer; allow: string; created_at: string }): void {
    this.#assertOpen();
    this.#requireDek();
    this.#write(() => {
      const result = this.#statement(
        'INSERT INTO clients (name, token_hash, allow, created_at) VALUES (?, ?, ?, ?)',
      ).run(row.name, row.token_hash, row.allow, row.created_at);
      this.#integrity.seal('clients', Number(result.lastInsertRowid));
    });
  }

  /** Deletes a client row; tells whether it existed. Works while locked (revocation must). */
  deleteClient(name: string): boolean {
    this.#assertOpen();
    return this.#write(() => {
      const row = this.#statement('SELECT id FROM clients WHERE name = ?').get(name) as
        | { id: number }
        | undefined;
      if (row === undefined) return false;
      this.#statement('DELETE FROM clients WHERE id = ?').run(row.id);
      this.#integrity.forget('clients', row.id);
      return true;
    });
  }

  /** Records when a client was last seen (display only, outside its MAC). */
  touchClient(name: string, lastUsedAt: string | null): void {
    this.#assertOpen();
    this.#statement('UPDATE clients SET last_used_at = ? WHERE name = ?').run(lastUsedAt, name);
  }

  /** Derives a 32-byte subkey of the data key for another use (e.g. the audit log's MAC). */
  deriveKey(purpose: string): Secret {
    this.#assertOpen();
    return Secret.fromBytes(deriveSubkey(this.#requireDek(), purpose), true, { guarded: true });
  }

  /**
   * Moves the data key under a new KEK (another store, a new passphrase, a fresh key file) in
   * one transaction, leaving every record untouched. The old key material is removed only after
   * the commit; if that fails, the result names what was left behind.
   */
  async rewrap(target: { keyStore: KeyStoreKind; passphrase?: Secret }): Promise<RewrapResult> {
    this.#assertOpen();
    this.#requireDek();
    const current = currentOf(readKeyRow(this.#db, this.path));
    const store = keyStoreFor(target.keyStore, this.#paths);
    const staged = await store.provision({ passphrase: target.passphrase, current });
    try {
      this.#assertOpen();
      const dek = this.#requireDek();
      const wrapped = seal(staged.kek, dek, dekAd());
      writeKeyRow(this.#db, target.keyStore, wrapped, staged.params);
    } catch (error) {
      await staged.abort().catch(() => {});
      throw error;
    } finally {
      wipe(staged.kek);
    }
    // The old wrapped DEK may still sit in WAL frames: move every page into the main file
    // (where secure_delete overwrote the old cell) and empty the WAL before the old KEK goes.
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    this.#keyStore = target.keyStore;
    await staged.commit();
    const replacedInPlace = current.kind === target.keyStore && current.kind !== 'keychain';
    if (replacedInPlace) return { leftover: null };
    const old = keyStoreFor(current.kind, this.#paths);
    try {
      await old.discard(current.params);
      return { leftover: null };
    } catch {
      return {
        leftover: `the vault no longer uses ${old.describe(current.params)}, but that old key could not be removed: remove it by hand`,
      };
    }
  }

  /** Reports the SQLite settings that keep the vault durable and private (for tests and `doctor`). */
  sqliteSettings(): { journalMode: string; synchronous: number; secureDelete: number; foreignKeys: number } {
    this.#assertOpen();
    const read = (pragma: string) => this.#db.pragma(pragma, { simple: true });
    return {
      journalMode: String(read('journal_mode')),
      synchronous: Number(read('synchronous')),
      secureDelete: Number(read('secure_delete')),
      foreignKeys: Number(read('foreign_keys')),
    };
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Closes the database and wipes the data key. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    wipe(this.#dek);
    this.#dek = undefined;
    this.#integrity.close();
    this.#records.clear();
    this.#db.close();
  }

  /** Starts checking rows once the data key is known; records read before are checked again. */
  #keyArrived({ dek, legacyRewrap }: UnwrappedDek): void {
    this.#records.clear();
    // A key still wrapped as keyward 0.1 did is what allows sealing unsealed rows; the new wrap is
    // stored in the same transaction as the seals, so that no later open may seal again.
    const upgradeKeyRecord =
      legacyRewrap === undefined ? undefined : () => rewrapKeyRow(this.#db, legacyRewrap);
    this.sealedOnOpen = this.#integrity.start(deriveSubkey(dek, MAC_KEY_PURPOSE), dek, upgradeKeyRecord);
  }

  /** Throws VAULT_CORRUPT when a row fails to authenticate (unchecked while locked). */
  #assertAuthentic(table: SealedTable, row: CredentialRow): void {
    if (!this.#integrity.ready) return;
    const problem = this.#integrity.check(table, row as unknown as Row);
    if (problem !== undefined) throw corruptRow(row.name, problem);
  }

  /** Runs a write transaction; on failure the in-memory manifest is reloaded from the file. */
  #write<T>(fn: () => T): T {
    try {
      return this.#db.transaction(fn).immediate();
    } catch (error) {
      this.#integrity.reload();
      throw error;
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ApiError('INTERNAL', 'the vault is closed');
  }

  #requireDek(): Buffer {
    if (this.#dek === undefined)
      throw new ApiError('VAULT_LOCKED', 'the vault is locked: run: keyward unlock');
    return this.#dek;
  }

  #writeSecret(credentialId: number, field: string, secret: Secret): void {
    const sealed = seal(this.#requireDek(), secret.bytes(), secretAd(credentialId, field));
    this.#statement(
      `INSERT INTO secrets (credential_id, field, nonce, ciphertext) VALUES (?, ?, ?, ?)
         ON CONFLICT (credential_id, field) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext`,
    ).run(credentialId, field, sealed.nonce, sealed.ciphertext);
  }

  #recordById(id: number): CredentialRecord {
    const row = this.#statement('SELECT * FROM credentials WHERE id = ?').get(id) as CredentialRow;
    return toRecord(row);
  }
}

/** The error for a credential row that fails to authenticate. */
function corruptRow(name: string, problem: string): ApiError {
  return new ApiError(
    'VAULT_CORRUPT',
    `the stored record of credential "${name}" failed to authenticate: ${problem}; nothing is served from it ` +
      `and no request is sent for it, other credentials are unaffected: run: keyward remove ${name}, then add it again`,
  );
}

/** The error for a setting row that fails to authenticate. */
function corruptSetting(key: string, problem: string): ApiError {
  return new ApiError(
    'VAULT_CORRUPT',
    `the stored setting "${key}" failed to authenticate: ${problem}; set it again (for the policy: keyward policy set ...)`,
  );
}
