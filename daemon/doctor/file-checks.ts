/**
 * Doctor's checks of keyward's files: the home and socket directories (0700), the socket (0600),
 * `vault.db`, the key file and `admin.token` (0600), each owned by the user. The daemon refuses to
 * start on the same conditions (fs-safety.ts); doctor names each one with the command that fixes it.
 */
import fs from 'node:fs';
import { commandLine } from '../service/command-runner.js';
import { type CheckResult, fail, ok } from './check-result.js';

/** What a private path must be. */
export type PrivateKind = 'directory' | 'file' | 'socket';

const WANT_MODE: Record<PrivateKind, number> = { directory: 0o700, file: 0o600, socket: 0o600 };

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

function isKind(stat: fs.Stats, kind: PrivateKind): boolean {
  if (kind === 'directory') return stat.isDirectory();
  if (kind === 'socket') return stat.isSocket();
  return stat.isFile();
}

/** What the check needs to know besides the path. */
export interface PrivatePathCheck {
  id: string;
  title: string;
  path: string;
  kind: PrivateKind;
  /** The fix when the path does not exist. */
  missingFix: string;
  /** This user's uid; undefined where there are no uids (Windows). */
  uid: number | undefined;
}

/** Checks that a path exists, is of its kind, is owned by this user and shut to everyone else. */
export function checkPrivatePath(check: PrivatePathCheck): CheckResult {
  const { id, title, path: target, kind, uid } = check;
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      return fail(
        id,
        title,
        `cannot inspect ${target}: ${(err as NodeJS.ErrnoException).code}`,
        'check the path and its parents',
      );
    }
  }
  if (stat === undefined) return fail(id, title, `${target} does not exist`, check.missingFix);
  if (stat.isSymbolicLink()) {
    return fail(
      id,
      title,
      `${target} is a symbolic link, which another user could redirect`,
      kind === 'socket'
        ? 'remove it and restart the daemon'
        : `replace it with the real ${kind} (${realpathOr(target)})`,
    );
  }
  if (!isKind(stat, kind)) {
    return fail(id, title, `${target} is not a ${kind}`, `move it away, then start the daemon again`);
  }
  if (uid === undefined) return ok(id, title, `${target} exists`);
  if (stat.uid !== uid) {
    return fail(
      id,
      title,
      `${target} is owned by uid ${stat.uid}, not by you (uid ${uid})`,
      `${commandLine(['sudo', 'chown', String(uid), target])}, or point keyward elsewhere (KEYWARD_HOME, KEYWARD_SOCKET)`,
    );
  }
  const want = WANT_MODE[kind];
  if ((stat.mode & 0o077) !== 0) {
    return fail(
      id,
      title,
      `${target} has mode ${octal(stat.mode)}: other users can ${kind === 'directory' ? 'look inside' : kind === 'socket' ? 'connect' : 'read it'}`,
      commandLine(['chmod', want.toString(8), target]),
    );
  }
  return ok(id, title, `${target} (${octal(stat.mode)}, yours)`);
}

function realpathOr(target: string): string {
  try {
    return fs.realpathSync(target);
  } catch {
    return 'its target';
  }
}
