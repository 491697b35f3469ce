/**
 * keyward's user service under a real systemd user manager (test/helpers/systemd-user-manager.ts),
 * as a non-root user, installed by `keyward service install` exactly as a user would: socket
 * activation, stop (SIGTERM, exit 0), kill -9 and the next use, the sandbox checked from inside the
 * running daemon (not from the unit file), a passphrase vault unlocked from the manager's
 * credential, the journal, uninstall. Skips with the reason where no manager can be started
 * (not root, no systemd, no namespaces). The steps build on each other, in order.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from './helpers/daemon-process.js';
import {
  type InsideResult,
  REPO_INSIDE,
  type RunOptions,
  startUserManager,
  type UserManager,
  userManagerSkipReason,
} from './helpers/systemd-user-manager.js';

const CLI_INSIDE = path.join(REPO_INSIDE, 'dist', 'daemon', 'cli', 'main.js');
const API_KEY = 'kw-test-api-key-7f3a9c';
const PASSPHRASE = 'keyward-test passphrase 51c2';

function skipReason(): string | false {
  // The namespace hides /tmp, /home, /run and /root behind fresh mounts: node must live elsewhere.
  if (/^\/(tmp|home|run|root|var\/tmp)\//.test(process.execPath))
    return `node (${process.execPath}) would be hidden inside the test namespace`;
  // The test user runs the checkout's CLI: a checkout made under umask 077 is closed to it.
  for (const dir of [REPO_ROOT, path.join(REPO_ROOT, 'dist'), path.join(REPO_ROOT, 'node_modules')]) {
    const mode = fs.statSync(dir).mode;
    if ((mode & 0o005) !== 0o005)
      return `${dir} (mode ${(mode & 0o777).toString(8)}) is closed to other users`;
  }
  return userManagerSkipReason();
}

describe('keyward.service under a real systemd user manager, as a non-root user', {
  skip: skipReason(),
}, () => {
  let mgr: UserManager;
  const keywardHome = () => path.join(mgr.home, '.local', 'share', 'keyward');
  const dropIn = () =>
    path.join(mgr.home, '.config', 'systemd', 'user', 'keyward.service.d', 'keyward-test.conf');

  const kw = (args: string[], opts: RunOptions = {}): Promise<InsideResult> =>
    mgr.run([process.execPath, CLI_INSIDE, ...args], opts);
  const systemctl = (...args: string[]): Promise<InsideResult> => mgr.run(['systemctl', '--user', ...args]);
  const must = async (what: Promise<InsideResult>, label: string): Promise<InsideResult> => {
    const r = await what;
    assert.equal(r.code, 0, `${label} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** `systemctl --user show keyward.service` properties. */
  const show = async (...props: string[]): Promise<Record<string, string>> => {
    const r = await must(
      systemctl('show', 'keyward.service', ...props.map((p) => `--property=${p}`)),
      'show',
    );
    return Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  };
  const mainPid = async (): Promise<number> => Number.parseInt((await show('MainPID')).MainPID ?? '0', 10);
  const writeDropIn = async (body: string): Promise<void> => {
    await must(
      mgr.run(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat > "$1"', 'sh', dropIn()], { input: body }),
      'drop-in',
    );
    await must(systemctl('daemon-reload'), 'daemon-reload');
  };
  const removeDropIn = async (): Promise<void> => {
    await must(mgr.run(['rm', '-f', dropIn()]), 'rm drop-in');
    await must(systemctl('daemon-reload'), 'daemon-reload');
  };
  const statusJson = async (env?: Record<string, string>) =>
    JSON.parse((await must(kw(['status', '--json'], { env }), 'keyward status --json')).stdout);

  before(async () => {
    mgr = await startUserManager(REPO_ROOT);
    const ready = mgr.log();
    assert.match(ready, /READY (running|degraded)/, ready);
  });
  after(async () => {
    await mgr?.stop();
  });

  test('service install: keyward.socket listens and the daemon does not run yet', async () => {
    await must(kw(['service', 'install']), 'keyward service install');
    assert.equal((await systemctl('is-active', 'keyward.socket')).stdout.trim(), 'active');
    const state = await show('ActiveState', 'MainPID');
    assert.equal(state.ActiveState, 'inactive');
    assert.equal(state.MainPID, '0');
    await must(
      mgr.run(['test', '-S', path.join(mgr.runtimeDir, 'keyward', 'keyward.sock')]),
      'socket exists',
    );
  });

  test('the first connection starts it; systemctl stop sends SIGTERM and it exits 0; the next keyward token starts it again', async () => {
    await must(kw(['add', 'demo', '--api-key'], { input: API_KEY }), 'keyward add');
    const first = await mainPid();
    assert.ok(first > 0, 'the first connection did not start keyward.service');

    await must(systemctl('stop', 'keyward.service'), 'systemctl stop');
    const stopped = await show('ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus');
    // ExecMainCode 1 is CLD_EXITED: it exited by itself (status 0), not killed by the signal.
    assert.deepEqual(stopped, {
      ActiveState: 'inactive',
      Result: 'success',
      ExecMainCode: '1',
      ExecMainStatus: '0',
    });
    assert.equal((await systemctl('is-active', 'keyward.socket')).stdout.trim(), 'active');

    const token = await must(kw(['token', 'demo']), 'keyward token');
    assert.equal(token.stdout, `${API_KEY}\n`);
    const second = await mainPid();
    assert.ok(
      second > 0 && second !== first,
      `keyward token did not start a new daemon (${first} → ${second})`,
    );
  });

  test('status, service status and doctor pass, and the daemon reports its sandbox in effect', async () => {
    assert.match((await must(kw(['status']), 'keyward status')).stdout, /^sandbox: in effect \(systemd\)$/m);
    const service = JSON.parse((await must(kw(['service', 'status', '--json']), 'service status')).stdout);
    assert.deepEqual(
      [service.installed, service.current, service.enabled, service.running, service.listening],
      [true, true, true, true, true],
    );
    const doctor = await kw(['doctor', '--json']);
    assert.equal(doctor.code, 0, doctor.stdout);
    const checks = JSON.parse(doctor.stdout).checks as { id: string; status: string; message: string }[];
    assert.deepEqual(
      checks.filter((c) => c.status !== 'ok').map((c) => c.id),
      ['policy'],
      doctor.stdout,
    );
    assert.match(checks.find((c) => c.id === 'sandbox')?.message ?? 'no sandbox check', /^in effect/);
    assert.deepEqual((await statusJson()).sandbox, {
      manager: 'systemd',
      user_namespace: true,
      usr_read_only: true,
      home_writable: false,
      keyward_home_writable: true,
      tmp_private: true,
      no_new_privs: true,
      core_dumps: false,
    });
  });

  test('inside the running daemon: /usr read-only, /tmp private, home and runtime dir read-only outside keyward home, NoNewPrivs, no core dumps', async () => {
    const pid = String(await mainPid());
    await must(mgr.runAsRoot(['sh', '-c', 'echo host > /tmp/keyward-test-marker']), 'marker');
    // Enter the daemon's mount namespace from outside its sandbox: root there still meets
    // read-only mounts, and the daemon's uid meets ProtectHome=.
    const probe = await must(
      mgr.runAsRoot(
        [
          'nsenter',
          '-t',
          pid,
          '-m',
          '--',
          'sh',
          '-c',
          `touch /usr/keyward-test-probe 2>/dev/null; echo usr=$?
test -e /tmp/keyward-test-marker; echo marker=$?
setpriv --reuid=${mgr.uid} --regid=${mgr.gid} --clear-groups -- sh -c '
touch "$1/keyward-test-probe" 2>/dev/null; echo home=$?
touch "$2/keyward-test-probe" && rm "$2/keyward-test-probe"; echo keyward_home=$?
touch "$3/keyward-test-probe" 2>/dev/null; echo runtime_dir=$?' sh "${mgr.home}" "${keywardHome()}" "${mgr.runtimeDir}"`,
        ],
        {},
      ),
      'probe',
    );
    assert.deepEqual(probe.stdout.trim().split('\n'), [
      'usr=1',
      'marker=1',
      'home=1',
      'keyward_home=0',
      'runtime_dir=1',
    ]);
    const status = await must(mgr.runAsRoot(['cat', `/proc/${pid}/status`, `/proc/${pid}/limits`]), 'proc');
    assert.match(status.stdout, /^NoNewPrivs:\s+1$/m);
    assert.match(status.stdout, /^Max core file size\s+0\s+0\s+bytes/m);
  });

  test("the D-Bus session bus (the keychain's way in) answers from inside the daemon's user and mount namespaces", async () => {
    // A session bus of the user's, where a desktop has one: $XDG_RUNTIME_DIR/bus.
    await must(
      mgr.run([
        'sh',
        '-c',
        `systemd-run --user -q --unit=keyward-test-bus dbus-daemon --session --address=unix:path=$XDG_RUNTIME_DIR/bus --nofork --nopidfile
for i in $(seq 100); do [ -S "$XDG_RUNTIME_DIR/bus" ] && exit 0; sleep 0.05; done; exit 1`,
      ]),
      'session bus',
    );
    const pid = String(await mainPid());
    // As the user, joining the namespaces the daemon runs in: the bus must still authenticate us
    // (EXTERNAL: the kernel shows the bus our real uid through PrivateUsers=).
    const call = await must(
      mgr.run([
        'nsenter',
        '-t',
        pid,
        '-U',
        '-m',
        '--preserve-credentials',
        '--',
        'sh',
        '-c',
        `touch /usr/keyward-test-probe 2>/dev/null && echo usr-writable
DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetId`,
      ]),
      'dbus-send inside the sandbox',
    );
    assert.match(call.stdout, /^method return .*\n\s+string "[0-9a-f]{32}"/);
    assert.doesNotMatch(call.stdout, /usr-writable/, 'nsenter did not join the sandbox');
  });

  test('kill -9 of the daemon: the next keyward token gets a working daemon', async () => {
    const before = await mainPid();
    await must(mgr.runAsRoot(['kill', '-KILL', String(before)]), 'kill -9');
    const token = await must(kw(['token', 'demo'], { timeoutMs: 30_000 }), 'keyward token after kill -9');
    assert.equal(token.stdout, `${API_KEY}\n`);
    const after = await mainPid();
    assert.ok(after > 0 && after !== before);
  });

  test('with PrivateUsers=no the manager skips the sandbox without a word, and doctor says so and why', async () => {
    // What keyward's unit was before PrivateUsers=yes: it starts "fine", with no sandbox at all.
    await writeDropIn('[Service]\nPrivateUsers=no\n');
    try {
      await must(systemctl('restart', 'keyward.service'), 'restart');
      const sandbox = (await statusJson()).sandbox;
      assert.equal(sandbox.user_namespace, false);
      assert.equal(sandbox.usr_read_only, false);
      assert.equal(sandbox.home_writable, true);
      assert.equal(sandbox.tmp_private, false);
      assert.match(
        (await must(kw(['status']), 'keyward status')).stdout,
        /^sandbox: not in effect: \/usr is not mounted read-only, .* \(run: keyward doctor\)$/m,
      );
      const doctor = await kw(['doctor', '--json']);
      assert.equal(doctor.code, 0, 'a missing sandbox is a warning: the daemon works');
      const check = JSON.parse(doctor.stdout).checks.find((c: { id: string }) => c.id === 'sandbox');
      assert.equal(check?.status, 'warn', doctor.stdout);
      assert.match(
        check.message,
        /not in effect: \/usr is not mounted read-only, your home directory is writable, \/tmp is shared/,
      );
      assert.match(check.message, /without a user namespace/);
      assert.match(check.fix, /systemctl --user cat keyward\.service/);
    } finally {
      await removeDropIn();
    }
    await must(systemctl('restart', 'keyward.service'), 'restart');
    assert.equal((await statusJson()).sandbox.usr_read_only, true);
  });

  test('a passphrase vault is unlocked at start from LoadCredential= or KEYWARD_PASSPHRASE_FILE, and stays locked without', async () => {
    const env = { KEYWARD_HOME: path.join(mgr.home, 'vault-pp'), KEYWARD_TEST_FAST_KDF: '1' };
    await must(kw(['init', '--key-store', 'passphrase'], { env, input: `${PASSPHRASE}\n` }), 'init');
    // Reinstalling for another KEYWARD_HOME rewrites the unit (Environment=, ReadWritePaths=).
    await must(kw(['service', 'install'], { env }), 'reinstall');
    const file = path.join(mgr.home, '.config', 'keyward-passphrase');
    await must(
      mgr.run(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', file], { input: `${PASSPHRASE}\n` }),
      'write',
    );
    try {
      await writeDropIn(`[Service]\nLoadCredential=keyward-passphrase:${file}\n`);
      await must(systemctl('restart', 'keyward.service'), 'restart');
      const unlocked = await statusJson(env);
      assert.equal(unlocked.vault.key_store, 'passphrase');
      assert.equal(unlocked.vault.locked, undefined, 'the credential did not unlock the vault');
      assert.equal(unlocked.sandbox.keyward_home_writable, true);
      await must(kw(['add', 'pp', '--api-key'], { env, input: API_KEY }), 'add');
      assert.equal((await must(kw(['token', 'pp'], { env }), 'token')).stdout, `${API_KEY}\n`);

      // The file itself, read through the read-only home.
      await writeDropIn(`[Service]\nEnvironment=KEYWARD_PASSPHRASE_FILE=${file}\n`);
      await must(systemctl('restart', 'keyward.service'), 'restart');
      assert.equal((await statusJson(env)).vault.locked, undefined, 'KEYWARD_PASSPHRASE_FILE did not unlock');
      assert.equal((await must(kw(['token', 'pp'], { env }), 'token')).stdout, `${API_KEY}\n`);
    } finally {
      await removeDropIn();
    }
    await must(systemctl('restart', 'keyward.service'), 'restart');
    assert.equal((await statusJson(env)).vault.locked, true);
    const locked = await kw(['token', 'pp'], { env });
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /^keyward: VAULT_LOCKED: /m);
  });

  test('the logs are readable with journalctl --user -u keyward, and hold no secret', async () => {
    const expected = [
      /keyward daemon listening/,
      /"signal":"SIGTERM"/,
      /unlocked the vault with the passphrase the service manager provided/,
    ];
    let journal = '';
    // journald writes asynchronously: give it a moment, bounded.
    for (let i = 0; i < 50; i++) {
      journal = (await mgr.run(['journalctl', '--user', '-u', 'keyward', '--no-pager', '-o', 'cat'])).stdout;
      if (expected.every((re) => re.test(journal))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const re of expected) assert.match(journal, re);
    assert.ok(!journal.includes(API_KEY) && !journal.includes(PASSPHRASE), 'a secret reached the journal');
  });

  test('service uninstall removes the units and leaves the vaults', async () => {
    await must(kw(['service', 'uninstall']), 'uninstall');
    const unitDir = path.join(mgr.home, '.config', 'systemd', 'user');
    await must(
      mgr.run(['sh', '-c', '! test -e "$1/keyward.service" && ! test -e "$1/keyward.socket"', 'sh', unitDir]),
      'units removed',
    );
    assert.notEqual((await systemctl('is-active', 'keyward.socket')).stdout.trim(), 'active');
    assert.equal(await mainPid(), 0);
    await must(mgr.run(['test', '-f', path.join(keywardHome(), 'vault.db')]), 'vault kept');
    await must(mgr.run(['test', '-f', path.join(mgr.home, 'vault-pp', 'vault.db')]), 'passphrase vault kept');
  });
});
