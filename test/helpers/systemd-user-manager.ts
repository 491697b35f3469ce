/**
 * A throwaway systemd user manager for a non-root test user, so a test sees what a real manager
 * does with keyward's units (which sandboxing it applies, socket activation, stop, restart, the
 * journal), not what `systemd-analyze verify` accepts. As root: fresh pid, mount, cgroup and net
 * namespaces; a private cgroup2 tree cut from a fresh sub-cgroup of the host's; tmpfs on /run,
 * /tmp, /var/tmp, /var/log/journal and /home; journald; a delegated `user@<uid>.service` cgroup;
 * then `systemd --user` as the test user. The checkout is bind-mounted read-only at /run/keyward-test/repo
 * (the tmpfs mounts would hide it under /tmp or /home). Everything dies with the namespace's PID 1,
 * which exits when the test closes its stdin or the test process dies; the cgroup is removed after.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The test user the manager runs as (created when missing). */
export const TEST_USER = 'keyward-test';
/** Where the checkout appears inside the namespace. */
export const REPO_INSIDE = '/run/keyward-test/repo';

const SYSTEMD = '/usr/lib/systemd/systemd';
const JOURNALD = ['/usr/lib/systemd/systemd-journald', '/lib/systemd/systemd-journald'];
const PATH_INSIDE = '/usr/local/bin:/usr/bin:/bin';
const TOOLS = [
  'unshare',
  'nsenter',
  'setpriv',
  'mount',
  'systemctl',
  'journalctl',
  'dbus-daemon',
  'dbus-send',
] as const;
const START_TIMEOUT_MS = 20_000;

/** What a command run inside printed and how it ended. */
export interface InsideResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one command run inside. */
export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** A running user manager and ways to act inside its namespaces. */
export interface UserManager {
  uid: number;
  gid: number;
  /** The test user's home inside (a tmpfs: empty at start). */
  home: string;
  runtimeDir: string;
  /** Runs `argv` as the test user with a login-like environment (HOME, USER, XDG_RUNTIME_DIR, PATH). */
  run(argv: readonly string[], opts?: RunOptions): Promise<InsideResult>;
  /** Runs `argv` as root inside the namespaces (to inspect the service from outside its sandbox). */
  runAsRoot(argv: readonly string[], opts?: RunOptions): Promise<InsideResult>;
  /** What the namespace's setup printed, for failure messages. */
  log(): string;
  /** Ends every process inside and removes the cgroup; safe to call twice. */
  stop(): Promise<void>;
}

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Finds the host's cgroup2 mount (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host). */
function cgroup2Mount(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [mounts, fsType] = line.split(' - ');
    if (fsType?.startsWith('cgroup2 ')) return mounts?.split(' ')[4];
  }
  return undefined;
}

/** Returns why no user manager can run here, or false when one can. */
export function userManagerSkipReason(): string | false {
  if (process.platform !== 'linux') return 'a systemd user manager needs Linux';
  if (process.getuid?.() !== 0)
    return 'starting a throwaway systemd user manager needs root (namespaces, a test user)';
  if (!fs.existsSync(SYSTEMD)) return `${SYSTEMD} is missing (Debian package "systemd"; .ci/run installs it)`;
  if (!JOURNALD.some((f) => fs.existsSync(f)))
    return 'systemd-journald is missing (Debian package "systemd")';
  const missing = TOOLS.filter((t) => !which(t));
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian packages util-linux, systemd, dbus)`;
  if (!which('useradd') && spawnSync('id', ['-u', TEST_USER], { stdio: 'ignore' }).status !== 0)
    return `no user ${TEST_USER} and no useradd to create it (Debian package "passwd")`;
  if (!cgroup2Mount()) return 'no cgroup2 hierarchy is mounted';
  const probe = spawnSync('unshare', ['--pid', '--mount', '--cgroup', '--net', '--fork', 'true'], {
    stdio: 'ignore',
    timeout: 10_000,
  });
  if (probe.status !== 0) return 'unshare cannot create pid/mount/cgroup/net namespaces here';
  return false;
}

/** Returns the test user's uid and gid, creating the user (no home on disk: /home is a tmpfs inside) when missing. */
function ensureTestUser(): { uid: number; gid: number } {
  const id = (flag: string): number | undefined => {
    const r = spawnSync('id', [flag, TEST_USER], { encoding: 'utf8' });
    return r.status === 0 ? Number.parseInt(r.stdout.trim(), 10) : undefined;
  };
  // journald files the logs of a system uid (below 1000) in the system journal, which the user
  // cannot read: `journalctl --user` needs a regular uid. Replace a system-uid test user.
  const existing = id('-u');
  if (existing !== undefined && existing < 1000) spawnSync('userdel', [TEST_USER], { stdio: 'ignore' });
  if (existing === undefined || existing < 1000) {
    const made = spawnSync(
      'useradd',
      [
        '--user-group',
        '--no-create-home',
        '--home-dir',
        `/home/${TEST_USER}`,
        '--shell',
        '/usr/sbin/nologin',
        TEST_USER,
      ],
      { encoding: 'utf8' },
    );
    // Another run may have created it meanwhile (exit 9: the user exists).
    if (made.status !== 0 && made.status !== 9)
      throw new Error(`useradd ${TEST_USER} failed: ${made.stderr}`);
  }
  const uid = id('-u');
  const gid = id('-g');
  if (uid === undefined || gid === undefined) throw new Error(`user ${TEST_USER} has no uid`);
  return { uid, gid };
}

/**
 * The namespace's PID 1: sets everything up, starts journald and the user manager, prints
 * READY, then waits for its stdin to close. `set -e`: any failed step ends it with the reason.
 */
const INNER = `
set -euo pipefail
: "$KW_UID" "$KW_GID" "$KW_HOME" "$KW_REPO" "$KW_JOURNALD"
if command -v ip >/dev/null; then ip link set lo up; fi
mount -t cgroup2 none /sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p ${REPO_INSIDE}
mount --bind "$KW_REPO" ${REPO_INSIDE}
mount -o remount,bind,ro ${REPO_INSIDE}
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
for d in /var/log/journal /home; do mkdir -p "$d"; mount -t tmpfs -o mode=755 tmpfs "$d"; done
# Without /run/systemd/system, systemd --user refuses to run ("not booted with systemd").
# The user manager cannot create unit-root itself; every mount sandboxing option needs it.
# /run/credentials is there on a booted system (PID 1 makes it for the first service with a
# credential); a sandboxed unit with LoadCredential= mounts on it and fails 226/NAMESPACE without.
mkdir -p /run/systemd/system /run/systemd/unit-root /run/credentials "/run/user/$KW_UID" "$KW_HOME"
chown "$KW_UID:$KW_GID" "/run/user/$KW_UID" "$KW_HOME"
chmod 700 "/run/user/$KW_UID" "$KW_HOME"
cg=/sys/fs/cgroup
mkdir -p $cg/init.scope $cg/system.slice/systemd-journald.service "$cg/user.slice/user-$KW_UID.slice/user@$KW_UID.service"
echo $$ > $cg/init.scope/cgroup.procs
(echo $BASHPID > $cg/system.slice/systemd-journald.service/cgroup.procs; exec "$KW_JOURNALD") &
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
# Move to /var/log/journal, where journald keeps one file per user: journalctl --user reads those.
timeout 10 journalctl --flush
# Delegation: the user manager creates its own sub-cgroups.
chown -R "$KW_UID:$KW_GID" "$cg/user.slice/user-$KW_UID.slice/user@$KW_UID.service"
as_user() { setpriv --reuid="$KW_UID" --regid="$KW_GID" --init-groups -- env -i HOME="$KW_HOME" USER=${TEST_USER} LOGNAME=${TEST_USER} XDG_RUNTIME_DIR="/run/user/$KW_UID" PATH=${PATH_INSIDE} "$@"; }
(echo $BASHPID > "$cg/user.slice/user-$KW_UID.slice/user@$KW_UID.service/cgroup.procs"; as_user ${SYSTEMD} --user) &
for i in $(seq 200); do [ -S "/run/user/$KW_UID/systemd/private" ] && break; sleep 0.05; done
state=$(as_user timeout 15 systemctl --user is-system-running --wait || true)
echo "READY $state"
read -r _ || true
`;

function runWith(argv: readonly string[], opts: RunOptions, what: string): Promise<InsideResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    const child = spawn(file ?? 'false', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    // A command that exits without reading its stdin closes the pipe: not an error of the test.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Removes a cgroup directory tree bottom-up, retrying while its processes are still dying. */
async function removeCgroup(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const walk = (d: string): void => {
        for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
          if (entry.isDirectory()) walk(path.join(d, entry.name));
        }
        fs.rmdirSync(d);
      };
      if (fs.existsSync(dir)) walk(dir);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`could not remove cgroup ${dir}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Removes the cgroups of earlier runs whose test process died before it could (kill -9 of the runner). */
async function removeStaleCgroups(mount: string): Promise<void> {
  for (const name of fs.readdirSync(mount)) {
    const owner = /^keyward-test-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (owner === undefined || fs.existsSync(`/proc/${owner}`)) continue;
    await removeCgroup(path.join(mount, name)).catch(() => {});
  }
}

/** Starts a user manager for the test user; call `stop()` when done (also on failure). */
export async function startUserManager(repoRoot: string): Promise<UserManager> {
  const { uid, gid } = ensureTestUser();
  const home = `/home/${TEST_USER}`;
  const runtimeDir = `/run/user/${uid}`;
  const mount = cgroup2Mount();
  if (!mount) throw new Error('no cgroup2 hierarchy is mounted');
  await removeStaleCgroups(mount);
  const cgroup = path.join(mount, `keyward-test-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(cgroup);
  const journald = JOURNALD.find((f) => fs.existsSync(f)) ?? JOURNALD[0];
  let child: ChildProcess;
  try {
    // The outer shell moves itself into the fresh cgroup, so `unshare --cgroup` roots the new
    // cgroup namespace there; the private cgroup2 mount inside then shows only that subtree.
    child = spawn(
      'bash',
      [
        '-c',
        'echo $$ > "$1/cgroup.procs" && exec unshare --pid --mount --cgroup --net --fork --mount-proc --propagation private -- bash -c "$2"',
        'keyward-test',
        cgroup,
        INNER,
      ],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? PATH_INSIDE,
          KW_UID: String(uid),
          KW_GID: String(gid),
          KW_HOME: home,
          KW_REPO: repoRoot,
          KW_JOURNALD: journald ?? '',
        },
      },
    );
  } catch (err) {
    fs.rmdirSync(cgroup);
    throw err;
  }
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If the test process dies, the pipe closes and PID 1 reads EOF: nothing outlives the test.
  const reap = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', reap);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.off('exit', reap);
      const init = initPid();
      child.stdin?.end();
      // PID 1 exits on EOF; should it hang, SIGKILL it: the kernel then kills the whole namespace.
      const timer = setTimeout(() => {
        if (init) spawnSync('kill', ['-KILL', String(init)]);
        child.kill('SIGKILL');
      }, 5_000);
      await exited;
      clearTimeout(timer);
      await removeCgroup(cgroup);
    })();
    return stopped;
  };

  /** The namespace's PID 1 as the host sees it: unshare's only child. */
  const initPid = (): number | undefined => {
    try {
      const pid = child.pid ?? 0;
      const first = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
      return first ? Number.parseInt(first, 10) : undefined;
    } catch {
      return undefined;
    }
  };

  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!/^READY /m.test(output)) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the namespace's setup failed:\n${output}`);
      if (Date.now() > deadline)
        throw new Error(`the user manager did not start within ${START_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const pid1 = initPid();
  if (pid1 === undefined) {
    await stop();
    throw new Error(`cannot find the namespace's PID 1:\n${output}`);
  }
  const enter = ['nsenter', '-t', String(pid1), '-p', '-m', '-C', '-n', '--'];
  const userEnv = (extra: Record<string, string> = {}): string[] =>
    Object.entries({
      HOME: home,
      USER: TEST_USER,
      LOGNAME: TEST_USER,
      XDG_RUNTIME_DIR: runtimeDir,
      PATH: PATH_INSIDE,
      ...extra,
    }).map(([k, v]) => `${k}=${v}`);
  return {
    uid,
    gid,
    home,
    runtimeDir,
    run: (argv, opts = {}) =>
      runWith(
        [
          ...enter,
          'setpriv',
          `--reuid=${uid}`,
          `--regid=${gid}`,
          '--init-groups',
          '--',
          'env',
          '-i',
          ...userEnv(opts.env),
          ...argv,
        ],
        opts,
        argv.join(' '),
      ),
    runAsRoot: (argv, opts = {}) => runWith([...enter, ...argv], opts, argv.join(' ')),
    log: () => output,
    stop,
  };
}
