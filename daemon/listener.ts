/**
 * Putting the server on its socket: one daemon per vault (a pid file), a live daemon detected vs.
 * a stale socket removed, the socket made 0600, or an inherited socket taken from systemd.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ErrorCode } from '../shared/errors.js';
import { isNamedPipe } from '../shared/paths.js';
import { ApiError } from './api-error.js';
import { ensurePrivateDir } from './fs-safety.js';

/** Pending connections the socket queues before the daemon accepts them. */
export const LISTEN_BACKLOG = 4096;

/** The fd systemd passes the first socket on (sd_listen_fds(3)). */
export const SD_LISTEN_FDS_START = 3;

/** Tells whether systemd handed this process a listening socket (`LISTEN_FDS`, `LISTEN_PID`). */
export function inheritedSocketFd(
  env: NodeJS.ProcessEnv = process.env,
  pid = process.pid,
): number | undefined {
  if (env.LISTEN_PID !== String(pid)) return undefined;
  const count = Number.parseInt(env.LISTEN_FDS ?? '', 10);
  return count >= 1 ? SD_LISTEN_FDS_START : undefined;
}

/** A startup refusal with a sentence the user can act on. */
export class StartupError extends Error {
  override name = 'StartupError';
  /** The code the CLI reports: ALREADY_EXISTS for a daemon already running, else FORBIDDEN. */
  readonly code: ErrorCode;

  constructor(message: string, code: ErrorCode = 'FORBIDDEN') {
    super(message);
    this.code = code;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the one-daemon-per-vault lock; returns a function releasing it. */
export function acquirePidLock(pidFile: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(
        pidFile,
        fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY,
        0o600,
      );
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(pidFile, 'utf8').trim() === String(process.pid)) fs.unlinkSync(pidFile);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new StartupError(
          `another keyward daemon (pid ${owner}) is already running on this vault; stop it first (kill ${owner}) or use it`,
          'ALREADY_EXISTS',
        );
      }
      // The previous daemon died without cleaning up (kill -9, power loss): its lock is stale.
      fs.rmSync(pidFile, { force: true });
    }
  }
  throw new StartupError(
    `could not take the daemon lock ${pidFile}: another daemon is starting at the same moment`,
    'ALREADY_EXISTS',
  );
}

function probe(socketPath: string): Promise<'live' | 'stale'> {
  return new Promise((resolve) => {
    const conn = net.connect({ path: socketPath });
    conn.once('connect', () => {
      conn.destroy();
      resolve('live');
    });
    conn.once('error', () => resolve('stale'));
  });
}

/** Prepares the socket's directory and clears a stale socket; refuses when a daemon answers there. */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  if (isNamedPipe(socketPath)) return;
  ensurePrivateDir(path.dirname(socketPath));
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new StartupError(
      `${socketPath} exists and is not a socket: move it away or set KEYWARD_SOCKET elsewhere`,
    );
  }
  if ((await probe(socketPath)) === 'live') {
    throw new StartupError(
      `a keyward daemon is already answering on ${socketPath}: stop it first, or use it`,
      'ALREADY_EXISTS',
    );
  }
  fs.unlinkSync(socketPath);
}

/**
 * Windows: libuv creates the pipe as its first instance (FILE_FLAG_FIRST_PIPE_INSTANCE), so a
 * pipe of that name that already exists makes listen fail. The name is predictable
 * (`keyward-<username>`), and whoever holds it would receive what clients send: refuse to start,
 * naming it, rather than run beside it. Returns undefined for any other failure.
 */
function squattedPipe(socketPath: string, err: unknown): StartupError | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (!isNamedPipe(socketPath) || (code !== 'EADDRINUSE' && code !== 'EACCES')) return undefined;
  return new StartupError(
    `the pipe ${socketPath} is already held by another process (another keyward daemon, or a process squatting ` +
      'its name to collect what clients send): find and stop it, or set KEYWARD_SOCKET to a pipe name of your own',
  );
}

/** Starts serving: on the inherited fd when given one, else on the socket path (made 0600). */
export async function listen(
  app: FastifyInstance,
  socketPath: string,
  fd: number | undefined,
): Promise<void> {
  if (fd !== undefined) {
    // fastify 5's listen({ fd }) crashes on an inherited socket; the raw server does not.
    await app.ready();
    await new Promise<void>((resolve, reject) => {
      app.server.once('error', reject);
      app.server.listen({ fd }, () => {
        app.server.off('error', reject);
        resolve();
      });
    });
    return;
  }
  // A burst of MCP servers starting at once opens many connections together; Node's default
  // backlog (511) overflows, and the kernel then refuses connects with EAGAIN.
  try {
    await app.listen({ path: socketPath, backlog: LISTEN_BACKLOG });
  } catch (err) {
    throw squattedPipe(socketPath, err) ?? err;
  }
  if (!isNamedPipe(socketPath)) fs.chmodSync(socketPath, 0o600);
}

/**
 * Turns a startup failure into the code and sentence the CLI prints: a daemon already running is
 * ALREADY_EXISTS, an unsafe path or file FORBIDDEN (both refusals, not bugs), anything else INTERNAL.
 */
export function describeStartupError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof StartupError || err instanceof ApiError) return { code: err.code, message: err.message };
  if (err instanceof Error && err.name === 'FsSafetyError')
    return { code: 'FORBIDDEN', message: err.message };
  return {
    code: 'INTERNAL',
    message: `the daemon could not start: ${(err as Error).message ?? String(err)}`,
  };
}
