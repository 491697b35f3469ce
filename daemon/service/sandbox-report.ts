/**
 * The daemon's sandbox, seen from the inside. A systemd user manager silently skips the
 * mount-namespace settings of a unit it cannot apply (no `PrivateUsers=`, no unprivileged user
 * namespaces), so a unit file proves nothing: what counts is whether this process can write
 * `/usr` and `$HOME`, shares PID 1's `/tmp`, and may gain privileges or dump core. Linux only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KeywardPaths } from '../../shared/paths.js';
import type { SandboxReport } from '../../shared/protocol.js';
import { LAUNCHD_LABEL, SYSTEMD_SERVICE_UNIT } from './service-files.js';

/** One line of /proc/<pid>/mountinfo, the fields the probes use (proc(5)). */
export interface MountEntry {
  /** `major:minor` of the file system. */
  device: string;
  /** The directory of that file system mounted here (not `/` for a bind mount). */
  root: string;
  mountPoint: string;
  /** Per-mount options: `ro` or `rw` first. */
  options: string[];
}

/** Undoes mountinfo's octal escapes (`\040` is a space). */
function unescapeMountPath(value: string): string {
  return value.replace(/\\([0-7]{3})/g, (_m, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/** Parses /proc/<pid>/mountinfo text into its entries, in order. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 10) continue;
    entries.push({
      device: fields[2] ?? '',
      root: unescapeMountPath(fields[3] ?? ''),
      mountPoint: unescapeMountPath(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
    });
  }
  return entries;
}

/**
 * Returns the mount that holds `target`: the longest mount point that is `target` or one of its
 * parents, the last one listed when several are stacked on the same point (the visible one).
 */
export function mountHolding(entries: readonly MountEntry[], target: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const point = entry.mountPoint;
    const holds = point === '/' || target === point || target.startsWith(`${point}/`);
    if (holds && (best === undefined || point.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function realpathOr(target: string): string {
  try {
    return fs.realpathSync(target);
  } catch {
    return target;
  }
}

/** Tells whether this process may write `dir` (access(2): permissions and read-only mounts). */
function canWrite(dir: string): boolean | null {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? false : null;
  }
}

/** Names the service manager running this process as keyward's service, from its cgroup or launchd's variable. */
export function detectManager(
  cgroupText: string | undefined,
  env: NodeJS.ProcessEnv,
): SandboxReport['manager'] {
  // `0::/user.slice/user-1000.slice/user@1000.service/app.slice/keyward.service` (cgroup v2), or the
  // `name=systemd` line of v1: a shell that merely inherited INVOCATION_ID is not the service.
  const inUnit = (cgroupText ?? '').split('\n').some((line) => line.endsWith(`/${SYSTEMD_SERVICE_UNIT}`));
  if (inUnit) return 'systemd';
  if (env.XPC_SERVICE_NAME === LAUNCHD_LABEL) return 'launchd';
  return null;
}

/** Returns the soft core dump limit's verdict from /proc/<pid>/limits: true when above 0. */
export function coreDumpsAllowed(limitsText: string | undefined): boolean | null {
  const line = limitsText?.split('\n').find((l) => l.startsWith('Max core file size'));
  const soft = line?.slice('Max core file size'.length).trim().split(/\s+/)[0];
  if (soft === undefined) return null;
  return soft !== '0';
}

/** Reads the no_new_privs bit from /proc/<pid>/status. */
export function noNewPrivs(statusText: string | undefined): boolean | null {
  const match = /^NoNewPrivs:\s*(\d)/m.exec(statusText ?? '');
  return match ? match[1] === '1' : null;
}

/** Tells whether a uid_map is not the initial namespace's identity map of all 2^32 uids. */
export function inUserNamespace(uidMap: string | undefined): boolean | null {
  if (uidMap === undefined) return null;
  return uidMap.trim().split(/\s+/).join(' ') !== '0 0 4294967295';
}

/** Where the probes look; tests point it at fixtures. */
export interface SandboxProbeInputs {
  proc: string;
  env: NodeJS.ProcessEnv;
  homedir: string;
}

/** Reports this process's sandbox, or undefined off Linux (no /proc to read it from). */
export function readSandboxReport(
  paths: Pick<KeywardPaths, 'home'>,
  inputs: SandboxProbeInputs = { proc: '/proc', env: process.env, homedir: os.homedir() },
): SandboxReport | undefined {
  if (process.platform !== 'linux') return undefined;
  const self = (name: string) => readText(path.join(inputs.proc, 'self', name));
  const ownMountsText = self('mountinfo');
  const own = ownMountsText === undefined ? undefined : parseMountInfo(ownMountsText);
  const usr = own ? mountHolding(own, realpathOr('/usr')) : undefined;
  // PID 1 (the system manager, or a container's init) keeps the machine's /tmp; readable unless
  // /proc is mounted with hidepid=, and then "unknown" is the honest answer.
  const initMountsText = readText(path.join(inputs.proc, '1', 'mountinfo'));
  const tmpOwn = own ? mountHolding(own, realpathOr('/tmp')) : undefined;
  const tmpInit = initMountsText
    ? mountHolding(parseMountInfo(initMountsText), realpathOr('/tmp'))
    : undefined;
  const home = realpathOr(inputs.homedir);
  return {
    manager: detectManager(self('cgroup'), inputs.env),
    user_namespace: inUserNamespace(self('uid_map')),
    usr_read_only: usr ? usr.options.includes('ro') : null,
    home_writable: path.resolve(home) === path.resolve(paths.home) ? null : canWrite(home),
    keyward_home_writable: canWrite(paths.home) === true,
    tmp_private: tmpOwn && tmpInit ? tmpOwn.device !== tmpInit.device || tmpOwn.root !== tmpInit.root : null,
    no_new_privs: noNewPrivs(self('status')),
    core_dumps: coreDumpsAllowed(self('limits')),
  };
}
