/**
 * Who is on the other end of a Unix-socket connection, as the kernel reports it: uid and gid
 * (Linux `SO_PEERCRED`, macOS `getpeereid`), pid (`SO_PEERCRED`, macOS `LOCAL_PEERPID`) and, on
 * Linux, the executable behind that pid. The daemon refuses other uids with it (contract.md,
 * "Access control") and names the caller in the audit log.
 *
 * The native addon (native/peercred) is optional: where it was not built or does not load,
 * `peerCredSupport()` says why and `readPeerCred()` returns null, and the socket's 0600 mode is
 * the only barrier left, as with ssh-agent on platforms without peer credentials.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testOverride } from './test-overrides.js';

/** The credentials of a connected peer; `pid` and `exe` are null when the platform cannot tell. */
export interface PeerCred {
  uid: number;
  gid: number;
  pid: number | null;
  exe: string | null;
}

interface PeerCredAddon {
  getPeerCred(fd: number): { uid: number; gid: number; pid: number };
  /** Absent from an addon built before it existed. */
  disableDumps?(): { dumpable: boolean; coreLimit: number };
}

type AddonState = { addon: PeerCredAddon } | { reason: string };

const PACKAGE_NAME = 'keyward';
const ADDON_PATH = ['native', 'peercred', 'build', 'Release', 'peercred.node'];

let state: AddonState | undefined;

/** Finds the package root by walking up to the package.json named keyward (from src or dist). */
function findPackageRoot(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME)
          return dir;
      } catch {
        // An unreadable package.json on the way up is not ours; keep walking.
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Loads the addon once and remembers either it or the reason it is unusable. */
function loadAddon(): AddonState {
  if (state) return state;
  state = tryLoadAddon();
  return state;
}

function tryLoadAddon(): AddonState {
  // Lets the test suite run the daemon as it runs where the addon could not be built.
  if (testOverride('KEYWARD_TEST_NO_ADDON') === '1') {
    return { reason: 'the peer-credentials addon is switched off (KEYWARD_TEST_NO_ADDON=1)' };
  }
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    return { reason: `peer credentials are not supported on ${process.platform}` };
  }
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  if (!root) return { reason: `could not find the ${PACKAGE_NAME} package root to load the addon from` };
  const file = join(root, ...ADDON_PATH);
  if (!existsSync(file)) {
    return { reason: `the peer-credentials addon is not built (${file} missing; run: npm run build:native)` };
  }
  try {
    const loaded = createRequire(import.meta.url)(file) as Partial<PeerCredAddon> | null;
    if (typeof loaded?.getPeerCred !== 'function') {
      return { reason: `${file} does not export getPeerCred; rebuild it with: npm run build:native` };
    }
    return { addon: loaded as PeerCredAddon };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return {
      reason: `the peer-credentials addon failed to load (${message}); rebuild it with: npm run build:native`,
    };
  }
}

/** Tells whether peer credentials can be read here and, when not, why (for a start-up warning). */
export function peerCredSupport(): { available: boolean; reason?: string } {
  const loaded = loadAddon();
  return 'addon' in loaded ? { available: true } : { available: false, reason: loaded.reason };
}

/** Reads the executable path of a pid from /proc (Linux only); null when gone or not ours to read. */
function readExe(pid: number | null): string | null {
  if (pid === null || process.platform !== 'linux') return null;
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/**
 * Reads the kernel's record of who connected on `socket`. Returns null when peer credentials are
 * unsupported here, and also when this socket has none to give (its fd is gone, it is not a Unix
 * socket, or the system call failed): where `peerCredSupport().available`, treat null as a refusal.
 */
export function readPeerCred(socket: Socket): PeerCred | null {
  const loaded = loadAddon();
  if (!('addon' in loaded)) return null;
  // net.Socket keeps its libuv handle private; on Unix the handle exposes the descriptor as `fd`.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return null;
  let raw: { uid: number; gid: number; pid: number };
  try {
    raw = loaded.addon.getPeerCred(fd);
  } catch {
    return null;
  }
  // pid 0 means the kernel could not name one (another pid namespace, or no LOCAL_PEERPID).
  const pid = raw.pid > 0 ? raw.pid : null;
  return { uid: raw.uid, gid: raw.gid, pid, exe: readExe(pid) };
}

/** What `disableDumps` achieved: whether the process can still be dumped or attached to, and why. */
export interface DumpState {
  /** True when core dumps and (Linux) same-uid ptrace are still possible. */
  dumpable: boolean;
  /** Why not hardened, when `dumpable`. */
  reason?: string;
}

/**
 * Makes this process undumpable (daemon start): RLIMIT_CORE 0 and, on Linux, PR_SET_DUMPABLE 0,
 * so no core file holds its keys and processes of the same uid cannot ptrace it or read its
 * memory through /proc. Needs the addon; without it, says why and changes nothing.
 */
export function disableDumps(): DumpState {
  const loaded = loadAddon();
  if (!('addon' in loaded)) return { dumpable: true, reason: loaded.reason };
  if (typeof loaded.addon.disableDumps !== 'function') {
    return {
      dumpable: true,
      reason: 'the peer-credentials addon is outdated; rebuild it with: npm run build:native',
    };
  }
  try {
    const result = loaded.addon.disableDumps();
    return result.dumpable
      ? {
          dumpable: true,
          reason: `PR_SET_DUMPABLE is not available on ${process.platform}; core dumps are off`,
        }
      : { dumpable: false };
  } catch (error) {
    return { dumpable: true, reason: error instanceof Error ? error.message : String(error) };
  }
}
