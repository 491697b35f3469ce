/**
 * Opening vault.db: the pragmas every connection needs, and a read-only path that leaves the
 * vault's files exactly as it found them.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { ApiError } from '../api-error.js';

/** The files SQLite keeps beside the database in WAL mode. */
export function sidecars(file: string): string[] {
  return [`${file}-wal`, `${file}-shm`];
}

/**
 * Opens vault.db for writing with the pragmas set on every open: a reopened WAL database comes
 * back with the compiled-in default synchronous=NORMAL, which can lose the last commits on power
 * loss, so FULL is set each time.
 */
export function openWritable(file: string): Database.Database {
  const db = new Database(file, { fileMustExist: true, timeout: 5_000 });
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    // Deleted content is overwritten with zeros, not left in free pages.
    db.pragma('secure_delete = ON');
    db.pragma('foreign_keys = ON');
    // The vault's schema is ours alone; never run functions a tampered schema might name.
    db.pragma('trusted_schema = OFF');
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * Tightens -wal and -shm to 0600. SQLite already gives them the database file's mode; this guards
 * against files left by another tool with a looser umask.
 */
export function tightenSidecars(file: string): void {
  if (process.platform === 'win32') return;
  for (const sidecar of sidecars(file)) {
    const stat = fs.lstatSync(sidecar, { throwIfNoEntry: false });
    if (stat?.isFile() && (stat.mode & 0o077) !== 0) fs.chmodSync(sidecar, 0o600);
  }
}

// Bytes 18 and 19 of the SQLite header are the read and write format versions: 2 means WAL.
const HEADER_FORMAT_OFFSETS = [18, 19] as const;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Opens vault.db read-only without creating or modifying any file. A read-only SQLite connection
 * to a WAL database would create -wal and -shm and leave them behind, so when no WAL holds
 * pending commits the database is read into memory instead; when a WAL does (a daemon is running
 * or crashed), SQLite must read it, and its files already exist.
 */
export function openReadOnly(file: string): Database.Database {
  const wal = fs.statSync(`${file}-wal`, { throwIfNoEntry: false });
  if (wal !== undefined && wal.size > 0) {
    return new Database(file, { readonly: true, fileMustExist: true, timeout: 5_000 });
  }
  const image = fs.readFileSync(file);
  if (image.length < 100 || !image.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) {
    throw new ApiError(
      'VAULT_CORRUPT',
      `${file} is not a keyward vault (empty or damaged, perhaps an interrupted keyward init): ` +
        'move it away and run: keyward init, or restore it from a backup',
    );
  }
  // An in-memory image cannot run in WAL mode; mark the copy as a rollback-journal database.
  for (const offset of HEADER_FORMAT_OFFSETS) if (image[offset] === 2) image[offset] = 1;
  return new Database(image, { readonly: true });
}
