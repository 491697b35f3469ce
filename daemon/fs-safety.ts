/**
 * Private files and directories: keyward's state must be readable by its own user alone
 * (contract.md "Files and environment"). Every check fails with a sentence that names the path,
 * says why it was refused and what to run, like ssh refusing a group-readable key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Why a path was refused. */
export type FsSafetyReason =
  | 'missing'
  | 'symlink'
  | 'not-a-directory'
  | 'not-a-file'
  | 'foreign-owner'
  | 'too-open';

/** A path that is not private enough for keyward's state. */
export class FsSafetyError extends Error {
  readonly path: string;
  readonly reason: FsSafetyReason;

  constructor(file: string, reason: FsSafetyReason, message: string) {
    super(message);
    this.name = 'FsSafetyError';
    this.path = file;
    this.reason = reason;
  }
}

const IS_WINDOWS = process.platform === 'win32';
// Windows has no O_NOFOLLOW (and no POSIX modes); 0 leaves the flags unchanged there.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/** Applies the owner and permission checks shared by files and directories. */
function checkOwnerAndMode(target: string, stat: fs.Stats, kind: 'directory' | 'file'): void {
  if (IS_WINDOWS) return;
  const uid = currentUid();
  if (uid !== undefined && stat.uid !== uid) {
    throw new FsSafetyError(
      target,
      'foreign-owner',
      `refusing ${kind} ${target}: it is owned by uid ${stat.uid}, not by you (uid ${uid}); ` +
        `keyward keeps its state only in paths you own: run: chown ${uid} ${target} (or set KEYWARD_HOME elsewhere)`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    const want = kind === 'directory' ? '700' : '600';
    throw new FsSafetyError(
      target,
      'too-open',
      `refusing ${kind} ${target}: its mode ${octal(stat.mode)} lets other users in; ` +
        `run: chmod ${want} ${target}`,
    );
  }
}

function lstatOrUndefined(target: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Checks that an existing directory is a real directory, owned by this user, mode 0700. */
export function checkPrivateDir(dir: string): void {
  const stat = lstatOrUndefined(dir);
  if (stat === undefined) {
    throw new FsSafetyError(dir, 'missing', `directory ${dir} does not exist: run: keyward init`);
  }
  if (stat.isSymbolicLink()) {
    throw new FsSafetyError(
      dir,
      'symlink',
      `refusing directory ${dir}: it is a symbolic link, which another user could redirect; ` +
        `point KEYWARD_HOME at the real directory (${safeRealpath(dir)}) instead`,
    );
  }
  if (!stat.isDirectory()) {
    throw new FsSafetyError(
      dir,
      'not-a-directory',
      `refusing ${dir}: it is not a directory; move it away or set KEYWARD_HOME elsewhere`,
    );
  }
  checkOwnerAndMode(dir, stat, 'directory');
}

function safeRealpath(target: string): string {
  try {
    return fs.realpathSync(target);
  } catch {
    return 'its target';
  }
}

/**
 * Creates `dir` (each missing level mode 0700) or, when it exists, checks it is a private
 * directory of this user; throws `FsSafetyError` otherwise.
 */
export function ensurePrivateDir(dir: string): void {
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  let cursor = absolute;
  while (lstatOrUndefined(cursor) === undefined) {
    missing.unshift(cursor);
    const parent = path.dirname(cursor);
    if (parent === cursor) break;
    cursor = parent;
  }
  for (const level of missing) {
    try {
      fs.mkdirSync(level, { mode: 0o700 });
    } catch (error) {
      // Another process may have created it meanwhile; the check below judges what is there.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      continue;
    }
    // mkdir's mode is filtered by the umask; set it exactly.
    if (!IS_WINDOWS) fs.chmodSync(level, 0o700);
  }
  checkPrivateDir(absolute);
}

/** Checks that `file` is a regular file owned by this user and not group/world-accessible. */
export function checkPrivateFile(file: string): void {
  const stat = lstatOrUndefined(file);
  if (stat === undefined) {
    throw new FsSafetyError(file, 'missing', `file ${file} does not exist`);
  }
  if (stat.isSymbolicLink()) {
    throw new FsSafetyError(
      file,
      'symlink',
      `refusing file ${file}: it is a symbolic link, which another user could redirect; ` +
        'replace it with the file itself',
    );
  }
  if (!stat.isFile()) {
    throw new FsSafetyError(file, 'not-a-file', `refusing ${file}: it is not a regular file; move it away`);
  }
  checkOwnerAndMode(file, stat, 'file');
}

/** Flushes a directory entry change (create, rename, unlink) to disk; a no-op on Windows. */
export function fsyncDir(dir: string): void {
  if (IS_WINDOWS) return;
  const fd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeNewFile(file: string, data: Buffer | string): void {
  const flags = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | O_NOFOLLOW;
  const fd = fs.openSync(file, flags, 0o600);
  try {
    // The open mode is filtered by the umask; make it exactly 0600 before any byte lands.
    if (!IS_WINDOWS) fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `file` with mode 0600 and fsyncs it. With `exclusive` it fails (EEXIST) if the file
 * exists; otherwise it replaces the file atomically (temp file in the same directory + rename),
 * so a crash leaves either the old content or the new, never a torn file.
 */
export function writePrivateFile(
  file: string,
  data: Buffer | string,
  opts: { exclusive?: boolean } = {},
): void {
  const dir = path.dirname(file);
  if (opts.exclusive) {
    writeNewFile(file, data);
    fsyncDir(dir);
    return;
  }
  const temp = path.join(dir, `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    writeNewFile(temp, data);
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fsyncDir(dir);
}
