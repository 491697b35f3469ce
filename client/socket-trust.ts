/**
 * Whom the CLI and the SDK are about to talk to. Before a connection carries a byte (an admin
 * token, a client token, a secret), its socket and the socket's directory must belong to this
 * user and be writable by nobody else; otherwise another user could have put a listener there
 * that collects what we send (contract.md "Security (v2)").
 *
 * What the client can check, with `node:` modules alone:
 * - Unix sockets (Linux, macOS): the owner and mode of the socket and of its directory (lstat,
 *   so a symbolic link is refused rather than followed). With a directory only we can write, no
 *   one else can swap the socket between this check and the connect.
 * - What it cannot: the peer's uid after connecting (SO_PEERCRED / getpeereid need the native
 *   addon, which only the daemon loads), and the directories above the socket's directory.
 * - Windows named pipes have no file to lstat, and the owner of a pipe's server process can only
 *   be read with native calls (GetNamedPipeServerProcessId, OpenProcessToken), which this module
 *   cannot make. The daemon creates its pipe as the first instance, so a squatter's pipe makes it
 *   refuse to start (daemon/listener.ts); a pipe created before the daemon starts is not
 *   detected here yet (SECURITY.md, "Platforms").
 */
import fs from 'node:fs';
import path from 'node:path';
import { isNamedPipe } from '../shared/paths.js';
import { daemonUnavailable, KeywardError } from './errors.js';

/** What the check needs from the system; injectable so tests can play another uid. */
export interface TrustInputs {
  uid: number | undefined;
  lstat(target: string): fs.Stats;
}

const SYSTEM: TrustInputs = {
  uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
  lstat: (target) => fs.lstatSync(target),
};

function forbidden(target: string, why: string, fix: string): KeywardError {
  return new KeywardError(
    'FORBIDDEN',
    `refusing to talk to the keyward daemon through ${target}: ${why}, so another user could be listening there; nothing was sent. ${fix}`,
  );
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/** Refuses an entry that is not this user's or that group/others may write. */
function checkEntry(target: string, stat: fs.Stats, uid: number, kind: 'socket' | 'directory'): void {
  if (stat.uid !== uid) {
    throw forbidden(
      target,
      `the ${kind} is owned by uid ${stat.uid}, not by you (uid ${uid})`,
      `check who created it; point KEYWARD_SOCKET at the socket your own daemon made`,
    );
  }
  if ((stat.mode & 0o022) !== 0) {
    throw forbidden(
      target,
      `the ${kind}'s mode ${octal(stat.mode)} lets other users write to it`,
      `run: chmod ${kind === 'directory' ? '700' : '600'} ${target} (then restart the daemon)`,
    );
  }
}

/**
 * Checks that `socketPath` and its directory belong to this user and are writable by no one
 * else; throws `KeywardError` `FORBIDDEN` naming the path otherwise. A missing directory or
 * socket is DAEMON_UNAVAILABLE at once, without connecting: between this check and a connect,
 * another user could create a missing directory (in /tmp, say) and listen there.
 */
export function assertTrustedSocket(socketPath: string, inputs: TrustInputs = SYSTEM): void {
  // No file to lstat and no POSIX owner: see the module comment for what guards a pipe.
  if (isNamedPipe(socketPath) || inputs.uid === undefined) return;
  const dir = path.dirname(path.resolve(socketPath));
  let dirStat: fs.Stats;
  try {
    dirStat = inputs.lstat(dir);
  } catch (error) {
    throw daemonUnavailable(socketPath, error as NodeJS.ErrnoException);
  }
  if (dirStat.isSymbolicLink()) {
    throw forbidden(
      dir,
      'the socket directory is a symbolic link, which could be pointed elsewhere',
      'point KEYWARD_SOCKET at the real directory instead',
    );
  }
  checkEntry(dir, dirStat, inputs.uid, 'directory');
  let stat: fs.Stats;
  try {
    stat = inputs.lstat(socketPath);
  } catch (error) {
    throw daemonUnavailable(socketPath, error as NodeJS.ErrnoException);
  }
  if (stat.isSymbolicLink()) {
    throw forbidden(
      socketPath,
      'the socket is a symbolic link, which could be pointed elsewhere',
      'point KEYWARD_SOCKET at the socket itself',
    );
  }
  checkEntry(socketPath, stat, inputs.uid, 'socket');
}
