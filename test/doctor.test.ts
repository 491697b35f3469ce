/**
 * `keyward doctor` through the built CLI against the real daemon: a healthy setup passes (exit 0),
 * and each broken case it detects prints a FAIL line naming the fix (exit 1): directory, socket and
 * key modes, a credential never logged in, an outdated or disabled service, a locked passphrase
 * vault, the daemon down, nothing set up at all.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type CliResult,
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

interface Check {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  title: string;
  message: string;
  fix?: string;
}

/** A user HOME whose PATH holds only a `systemctl` stub; `enabled` switches its answers. */
function serviceSandbox(kw: TestHome): {
  env: NodeJS.ProcessEnv;
  setEnabled(on: boolean): void;
  unitDir: string;
} {
  const root = path.dirname(kw.home);
  const home = path.join(root, 'user-home');
  const bin = path.join(root, 'bin');
  fs.mkdirSync(home, { mode: 0o700 });
  fs.mkdirSync(bin);
  const state = path.join(root, 'enabled');
  // Shell builtins only: PATH has nothing else on it.
  const on = `s=; read -r s < '${state}' 2>/dev/null; [ "$s" = on ]`;
  const script = `#!/bin/sh
case "$2" in
  is-enabled) if ${on}; then echo enabled; exit 0; fi; echo disabled; exit 1;;
  is-active) if ${on}; then echo active; echo inactive; exit 3; fi; echo inactive; echo inactive; exit 3;;
  enable) echo on > '${state}';;
  disable) echo off > '${state}';;
esac
exit 0
`;
  fs.writeFileSync(path.join(bin, 'systemctl'), script, { mode: 0o755 });
  return {
    env: { HOME: home, PATH: bin, XDG_CONFIG_HOME: '' },
    setEnabled: (value) => fs.writeFileSync(state, value ? 'on\n' : 'off\n'),
    unitDir: path.join(home, '.config', 'systemd', 'user'),
  };
}

/** Runs `doctor --json`; with `text`, also plain `doctor`, and checks the two tell the same story. */
async function doctor(
  kw: TestHome,
  env: NodeJS.ProcessEnv,
  opts: { text?: boolean } = {},
): Promise<CliResult & { checks: Check[] }> {
  const json = await runCli(kw, ['doctor', '--json'], { env });
  const report = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
  assert.equal(report.ok, json.code === 0);
  if (!opts.text) return { ...json, checks: report.checks };
  const text = await runCli(kw, ['doctor'], { env });
  assert.equal(json.code, text.code, 'doctor and doctor --json disagree on the exit code');
  // One line per check, in the same order as the JSON.
  const lines = text.stdout.trimEnd().split('\n');
  assert.equal(lines.length, report.checks.length, text.stdout);
  report.checks.forEach((check, i) => {
    const label = check.status === 'fail' ? 'FAIL' : check.status.padEnd(4);
    // The clock line carries the time of its own run.
    const message = check.id === 'clock' ? '' : check.message;
    assert.ok(lines[i]?.startsWith(`${label} ${check.title}: ${message}`), lines[i]);
    if (check.status !== 'ok') assert.ok(check.fix && lines[i]?.endsWith(`; fix: ${check.fix}`), lines[i]);
  });
  return { ...text, checks: report.checks };
}

function byId(checks: Check[], id: string): Check {
  const found = checks.find((c) => c.id === id);
  assert.ok(found, `no ${id} check in ${checks.map((c) => c.id).join(', ')}`);
  return found;
}

function failing(checks: Check[]): string[] {
  return checks.filter((c) => c.status === 'fail').map((c) => c.id);
}

describe('keyward doctor against a running daemon', () => {
  let kw: TestHome;
  let daemon: DaemonProcess;
  let box: ReturnType<typeof serviceSandbox>;

  before(async () => {
    kw = makeHome();
    box = serviceSandbox(kw);
    daemon = await startDaemon(kw);
    const install = await runCli(kw, ['service', 'install', '--target', 'systemd'], { env: box.env });
    assert.equal(install.code, 0, install.stderr);
  });
  after(async () => {
    await daemon?.stop();
    kw?.cleanup();
  });

  test('a healthy setup passes: every check ok, the open policy a warning; exit 0', async () => {
    const run = await doctor(kw, box.env, { text: true });
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(
      run.checks.map((c) => `${c.id}=${c.status}`),
      [
        'daemon=ok',
        'home=ok',
        'socket-dir=ok',
        'socket=ok',
        'vault=ok',
        'admin-token=ok',
        'key-store=ok',
        'service=ok',
        'clock=ok',
        'credentials=ok',
        'policy=warn',
      ],
    );
    assert.match(
      run.stdout,
      new RegExp(
        `^ok {3}daemon: answers on ${kw.socket} \\(version \\d+\\.\\d+\\.\\d+, pid ${daemon.child.pid}\\)$`,
        'm',
      ),
    );
    assert.match(run.stdout, /^warn policy: open: .*; fix: .*keyward policy set strict$/m);

    const strict = await runCli(kw, ['policy', 'set', 'strict']);
    assert.equal(strict.code, 0, strict.stderr);
    try {
      const again = await doctor(kw, box.env, { text: true });
      assert.equal(again.code, 0);
      assert.deepEqual(
        again.checks.filter((c) => c.status !== 'ok'),
        [],
      );
    } finally {
      assert.equal((await runCli(kw, ['policy', 'set', 'open'])).code, 0);
    }
  });

  test('a socket directory or home others can enter fails with the chmod that fixes it', async () => {
    const socketDir = path.dirname(kw.socket);
    fs.chmodSync(socketDir, 0o755);
    fs.chmodSync(kw.home, 0o750);
    try {
      const run = await doctor(kw, box.env, { text: true });
      assert.equal(run.code, 1);
      assert.deepEqual(failing(run.checks), ['home', 'socket-dir']);
      assert.match(
        run.stdout,
        new RegExp(
          `^FAIL socket directory: ${socketDir} has mode 0755: .*; fix: chmod 700 ${socketDir}$`,
          'm',
        ),
      );
      assert.equal(byId(run.checks, 'home').fix, `chmod 700 ${kw.home}`);
    } finally {
      fs.chmodSync(socketDir, 0o700);
      fs.chmodSync(kw.home, 0o700);
    }
  });

  test('a socket, key file or admin token others can use fails with chmod 600', async () => {
    const keyFile = path.join(kw.home, 'vault.key');
    const token = path.join(kw.home, 'admin.token');
    fs.chmodSync(kw.socket, 0o666);
    fs.chmodSync(keyFile, 0o640);
    fs.chmodSync(token, 0o644);
    try {
      const run = await doctor(kw, box.env);
      assert.equal(run.code, 1);
      // The CLI sends nothing through a socket others may write to, so the daemon is not asked either.
      assert.deepEqual(failing(run.checks), ['daemon', 'socket', 'admin-token', 'key-store']);
      assert.match(
        byId(run.checks, 'daemon').message,
        /^not asked: refusing to talk to the keyward daemon through /,
      );
      assert.equal(byId(run.checks, 'socket').fix, `chmod 600 ${kw.socket}`);
      assert.equal(byId(run.checks, 'key-store').fix, `chmod 600 ${keyFile}`);
      assert.equal(byId(run.checks, 'admin-token').fix, `chmod 600 ${token}`);
    } finally {
      fs.chmodSync(kw.socket, 0o600);
      fs.chmodSync(keyFile, 0o600);
      fs.chmodSync(token, 0o600);
    }
  });

  test('credentials never logged in fail with the login command for their grant', async () => {
    const endpoints = [
      '--authorization-url',
      'https://auth.example.com/authorize',
      '--token-url',
      'https://auth.example.com/token',
    ];
    const web = await runCli(kw, ['add', 'webapp', '--oauth', ...endpoints, '--client-id', 'c1']);
    assert.equal(web.code, 0, web.stderr);
    const device = await runCli(kw, [
      'add',
      'tv',
      '--oauth',
      ...endpoints,
      '--device-authorization-url',
      'https://auth.example.com/device',
      '--grant',
      'device_code',
      '--client-id',
      'c2',
    ]);
    assert.equal(device.code, 0, device.stderr);
    try {
      const run = await doctor(kw, box.env);
      assert.equal(run.code, 1);
      assert.deepEqual(failing(run.checks), ['credential:tv', 'credential:webapp']);
      assert.equal(
        byId(run.checks, 'credential:webapp').message,
        'needs a login: it has never been logged in',
      );
      assert.equal(byId(run.checks, 'credential:webapp').fix, 'keyward login webapp');
      assert.equal(byId(run.checks, 'credential:tv').fix, 'keyward login tv --device');
    } finally {
      for (const name of ['webapp', 'tv'])
        assert.equal((await runCli(kw, ['remove', name, '--no-revoke'])).code, 0);
    }
  });

  test('an outdated unit fails with keyward service install; a disabled one too; none installed only warns', async () => {
    const unit = path.join(box.unitDir, 'keyward.service');
    const original = fs.readFileSync(unit, 'utf8');
    fs.writeFileSync(
      unit,
      original.replace(/^ExecStart=.*$/m, 'ExecStart=/usr/lib/node-18/bin/node /gone/main.js daemon'),
    );
    try {
      const outdated = await doctor(kw, box.env);
      assert.equal(outdated.code, 1);
      assert.deepEqual(failing(outdated.checks), ['service']);
      assert.match(byId(outdated.checks, 'service').message, /differ from what keyward would write now/);
      assert.equal(byId(outdated.checks, 'service').fix, 'keyward service install');
    } finally {
      fs.writeFileSync(unit, original);
    }
    box.setEnabled(false);
    try {
      const disabled = await doctor(kw, box.env);
      assert.deepEqual(failing(disabled.checks), ['service']);
      assert.match(byId(disabled.checks, 'service').message, /not enabled/);
    } finally {
      box.setEnabled(true);
    }
    const elsewhere = { ...box.env, XDG_CONFIG_HOME: path.join(path.dirname(kw.home), 'empty-config') };
    const none = await doctor(kw, elsewhere);
    assert.equal(none.code, 0);
    assert.equal(byId(none.checks, 'service').status, 'warn');
    assert.equal(byId(none.checks, 'service').fix, 'keyward service install');
  });

  // Last: it stops the daemon.
  test('with the daemon down: FAIL daemon and socket, with how to find out why the service does not start', async () => {
    assert.equal(await daemon.stop(), 0);
    const run = await doctor(kw, box.env);
    assert.equal(run.code, 1);
    assert.deepEqual(failing(run.checks), ['daemon', 'socket']);
    assert.match(
      byId(run.checks, 'daemon').message,
      new RegExp(`not reachable: cannot reach the keyward daemon at ${kw.socket} \\(ENOENT\\)`),
    );
    assert.match(
      byId(run.checks, 'daemon').fix ?? '',
      /systemctl --user status keyward\.socket keyward\.service; journalctl --user -u keyward/,
    );
    // The vault is still read (clear metadata only) while the daemon is down.
    assert.equal(byId(run.checks, 'key-store').status, 'ok');
    assert.equal(byId(run.checks, 'credentials').status, 'ok');
    // Without the service, the fix is to start the daemon.
    const bare = await doctor(kw, {
      ...box.env,
      XDG_CONFIG_HOME: path.join(path.dirname(kw.home), 'empty-config'),
    });
    assert.match(
      byId(bare.checks, 'daemon').fix ?? '',
      /^start it: keyward daemon .*keyward service install$/,
    );
  });
});

describe('keyward doctor on a passphrase vault', () => {
  let kw: TestHome;
  let daemon: DaemonProcess;
  before(async () => {
    kw = makeHome();
    const init = await runCli(kw, ['init', '--key-store', 'passphrase'], {
      input: 'correct horse battery\n',
    });
    assert.equal(init.code, 0, init.stderr);
    daemon = await startDaemon(kw);
  });
  after(async () => {
    await daemon?.stop();
    kw?.cleanup();
  });

  test('locked: FAIL key store with keyward unlock; unlocked: ok', async () => {
    const env = { PATH: '', HOME: path.dirname(kw.home) };
    const locked = await doctor(kw, env, { text: true });
    assert.equal(locked.code, 1);
    assert.deepEqual(failing(locked.checks), ['key-store']);
    assert.match(
      locked.stdout,
      /^FAIL key store: passphrase: the vault is locked, so no token can be served; fix: keyward unlock/m,
    );

    const unlock = await runCli(kw, ['unlock'], { input: 'correct horse battery\n' });
    assert.equal(unlock.code, 0, unlock.stderr);
    const unlocked = await doctor(kw, env);
    assert.equal(byId(unlocked.checks, 'key-store').status, 'ok');
    assert.equal(byId(unlocked.checks, 'key-store').message, 'passphrase, unlocked');
  });
});

describe('keyward doctor with nothing set up', () => {
  test('fails on the daemon, the home and the vault, each with what to run', async () => {
    const kw = makeHome();
    try {
      const run = await doctor(kw, { PATH: '', HOME: path.dirname(kw.home) });
      assert.equal(run.code, 1);
      assert.deepEqual(failing(run.checks), ['daemon', 'home', 'socket-dir', 'socket', 'vault']);
      assert.match(byId(run.checks, 'home').fix ?? '', /^keyward init, or start the daemon/);
      assert.match(byId(run.checks, 'vault').fix ?? '', /^keyward init/);
      // Doctor only looks: it created nothing.
      assert.equal(fs.existsSync(kw.home), false);
      assert.equal(fs.existsSync(path.dirname(kw.socket)), false);
    } finally {
      kw.cleanup();
    }
  });
});
