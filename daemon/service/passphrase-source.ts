/**
 * Where a daemon under a service manager finds its vault passphrase, so a passphrase vault can be
 * unlocked at start without anyone typing it: a systemd credential (`LoadCredential=` or
 * `LoadCredentialEncrypted=` named `keyward-passphrase`, read from `$CREDENTIALS_DIRECTORY`), or a
 * file named by `KEYWARD_PASSPHRASE_FILE`. Either must be a private (0600 or stricter) regular
 * file of this user. Without either, the vault stays locked until `keyward unlock`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkPrivateFile, FsSafetyError } from '../fs-safety.js';
import { StartupError } from '../listener.js';
import { Secret } from '../secret.js';

/** The systemd credential name the unit passes the passphrase under (systemd.exec(5) "Credentials"). */
export const PASSPHRASE_CREDENTIAL = 'keyward-passphrase';

/** The variable naming a passphrase file. */
export const PASSPHRASE_FILE_VARIABLE = 'KEYWARD_PASSPHRASE_FILE';

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * Reads the vault passphrase a service manager provides: `$CREDENTIALS_DIRECTORY/keyward-passphrase`
 * first, else `$KEYWARD_PASSPHRASE_FILE`; returns undefined when neither is configured. Throws a
 * `FsSafetyError` or `StartupError` (a sentence naming the file and the fix) when the configured
 * file is missing, not private, or empty. One trailing `\n` or `\r\n` is removed, as on stdin.
 */
export function readServicePassphrase(env: NodeJS.ProcessEnv = process.env): Secret | undefined {
  const credentialsDir = env.CREDENTIALS_DIRECTORY;
  if (credentialsDir) {
    const file = path.join(credentialsDir, PASSPHRASE_CREDENTIAL);
    // The unit may pass other credentials and not this one: then there is simply none.
    if (fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined) {
      return readPassphraseFile(file, `the systemd credential ${PASSPHRASE_CREDENTIAL}`);
    }
  }
  const named = env[PASSPHRASE_FILE_VARIABLE];
  if (named) {
    if (!path.isAbsolute(named)) {
      throw new StartupError(
        `${PASSPHRASE_FILE_VARIABLE}=${named} is not an absolute path: give the full path of the passphrase file`,
      );
    }
    return readPassphraseFile(named, PASSPHRASE_FILE_VARIABLE);
  }
  return undefined;
}

function readPassphraseFile(file: string, source: string): Secret {
  let fd: number;
  try {
    // O_NOFOLLOW: the file checked below is the file read, not whatever a symlink points to.
    fd = fs.openSync(file, fs.constants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new StartupError(
        `${source} names ${file}, which does not exist: create it (chmod 600) or unset it`,
      );
    }
    if (code === 'ELOOP') {
      throw new FsSafetyError(
        file,
        'symlink',
        `refusing ${file} (${source}): it is a symbolic link; use the file itself`,
      );
    }
    throw new StartupError(`cannot read ${file} (${source}): ${code ?? (err as Error).message}`);
  }
  let bytes: Buffer | undefined;
  try {
    const opened = fs.fstatSync(fd);
    checkPrivateFile(file);
    const checked = fs.lstatSync(file);
    if (checked.ino !== opened.ino || checked.dev !== opened.dev) {
      throw new StartupError(
        `${file} (${source}) was replaced while it was being read: start the daemon again`,
      );
    }
    bytes = fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  let end = bytes.length;
  if (end >= 2 && bytes[end - 2] === 0x0d && bytes[end - 1] === 0x0a) end -= 2;
  else if (end >= 1 && bytes[end - 1] === 0x0a) end -= 1;
  if (end === 0) {
    bytes.fill(0);
    throw new StartupError(`${file} (${source}) is empty: write the vault passphrase into it, or unset it`);
  }
  const secret = Secret.fromBytes(bytes.subarray(0, end));
  bytes.fill(0);
  return secret;
}
