/**
 * Where keyward keeps its state and its socket. The daemon, the CLI and the SDK all resolve paths
 * here, from the same inputs, so they always agree (contract.md "Files and environment").
 */
import os from 'node:os';
import path from 'node:path';

/** macOS's `sun_path` holds 104 bytes including the terminating NUL. */
export const DARWIN_SUN_PATH_MAX = 104;

/** What path resolution depends on; every field is injectable so tests can play any platform. */
export interface PathInputs {
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
  homedir: string;
  uid: number;
  username: string;
  tmpdir: string;
}

/** The files keyward uses, all derived from `KEYWARD_HOME` except the socket. */
export interface KeywardPaths {
  home: string;
  socket: string;
  vault: string;
  keyFile: string;
  adminToken: string;
  auditLog: string;
  config: string;
}

/** Reads the inputs from this process. */
export function currentPathInputs(): PathInputs {
  let username = '';
  try {
    username = os.userInfo().username;
  } catch {
    username = process.env.USER ?? process.env.USERNAME ?? 'user';
  }
  return {
    env: process.env,
    platform: process.platform,
    homedir: os.homedir(),
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    username,
    tmpdir: os.tmpdir(),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value !== '' ? value : undefined;
}

/** Resolves `KEYWARD_HOME`. */
export function resolveHome(inputs: PathInputs): string {
  const explicit = nonEmpty(inputs.env.KEYWARD_HOME);
  if (explicit) return explicit;
  switch (inputs.platform) {
    case 'darwin':
      return path.posix.join(inputs.homedir, 'Library', 'Application Support', 'keyward');
    case 'win32': {
      const local = nonEmpty(inputs.env.LOCALAPPDATA) ?? path.win32.join(inputs.homedir, 'AppData', 'Local');
      return path.win32.join(local, 'keyward');
    }
    default: {
      const dataHome =
        nonEmpty(inputs.env.XDG_DATA_HOME) ?? path.posix.join(inputs.homedir, '.local', 'share');
      return path.posix.join(dataHome, 'keyward');
    }
  }
}

/** Resolves `KEYWARD_SOCKET`: a socket path, or a pipe name on Windows. */
export function resolveSocket(inputs: PathInputs, home = resolveHome(inputs)): string {
  const explicit = nonEmpty(inputs.env.KEYWARD_SOCKET);
  if (explicit) return explicit;
  switch (inputs.platform) {
    case 'win32':
      return `\\\\.\\pipe\\keyward-${inputs.username}`;
    case 'darwin': {
      const inHome = path.posix.join(home, 'run', 'keyward.sock');
      // The limit counts bytes plus the NUL, so a path must be strictly shorter.
      if (Buffer.byteLength(inHome) < DARWIN_SUN_PATH_MAX) return inHome;
      return path.posix.join(inputs.tmpdir, `keyward-${inputs.uid}`, 'keyward.sock');
    }
    default: {
      const runtime = nonEmpty(inputs.env.XDG_RUNTIME_DIR);
      if (runtime) return path.posix.join(runtime, 'keyward', 'keyward.sock');
      return path.posix.join(home, 'run', 'keyward.sock');
    }
  }
}

/** Resolves every path keyward uses. */
export function resolvePaths(inputs: PathInputs = currentPathInputs()): KeywardPaths {
  const home = resolveHome(inputs);
  const join = inputs.platform === 'win32' ? path.win32.join : path.posix.join;
  return {
    home,
    socket: resolveSocket(inputs, home),
    vault: join(home, 'vault.db'),
    keyFile: join(home, 'vault.key'),
    adminToken: join(home, 'admin.token'),
    auditLog: join(home, 'audit.log'),
    config: join(home, 'config.json'),
  };
}

/** Tells whether a socket address is a Windows named pipe. */
export function isNamedPipe(socket: string): boolean {
  return socket.startsWith('\\\\.\\pipe\\') || socket.startsWith('\\\\?\\pipe\\');
}
