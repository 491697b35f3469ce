/**
 * `keyward service install|uninstall|status` through the built CLI, in a temp HOME, with
 * `systemctl` and `launchctl` replaced on PATH by scripts that record their argv: install writes
 * exactly the files `--dry-run` printed and runs the documented commands; uninstall removes them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { LAUNCHD_LABEL } from '../daemon/service/service-files.js';
import { listFiles, makeHome, runCli, type TestHome } from './helpers/daemon-process.js';

/** A temp HOME with a bin directory that is the whole PATH. */
interface Sandbox {
  kw: TestHome;
  home: string;
  bin: string;
  env: NodeJS.ProcessEnv;
  /** The argv lines the stubs recorded, in order. */
  calls(): string[];
}

function makeSandbox(): Sandbox {
  const kw = makeHome();
  const root = path.dirname(kw.home);
  const home = path.join(root, 'user-home');
  const bin = path.join(root, 'bin');
  fs.mkdirSync(home, { mode: 0o700 });
  fs.mkdirSync(bin);
  const log = path.join(root, 'calls.log');
  return {
    kw,
    home,
    bin,
    // XDG_CONFIG_HOME empty: the unit directory must come from HOME, as for most users.
    env: { HOME: home, PATH: bin, XDG_CONFIG_HOME: '', XDG_RUNTIME_DIR: path.join(root, 'runtime') },
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
  };
}

/**
 * Writes a stub tool that appends its argv to calls.log and answers like the real one from a
 * state directory: `enabled` exists once enabled (systemctl) or loaded (launchctl).
 */
function writeStub(box: Sandbox, name: 'systemctl' | 'launchctl', opts: { failWith?: string } = {}): void {
  const root = path.dirname(box.kw.home);
  const log = path.join(root, 'calls.log');
  const state = path.join(root, `${name}-enabled`);
  const fail = opts.failWith ? `echo '${opts.failWith}' >&2; exit 1` : '';
  // PATH holds only the stubs, so they use shell builtins alone (no touch, rm or cat).
  const on = `s=; read -r s < '${state}' 2>/dev/null; [ "$s" = on ]`;
  const answers =
    name === 'systemctl'
      ? `case "$2" in
  is-enabled) if ${on}; then echo enabled; exit 0; fi; echo disabled; exit 1;;
  is-active) echo inactive; echo inactive; exit 3;;
  enable) echo on > '${state}';;
  disable) echo off > '${state}';;
esac`
      : `case "$1" in
  print) if ${on}; then echo 'state = running'; exit 0; fi; echo 'Could not find service' >&2; exit 113;;
  print-disabled) echo 'disabled services = {'; echo '}';;
  bootstrap) echo on > '${state}';;
  bootout) echo off > '${state}';;
esac`;
  const script = `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\n${fail}\n${answers}\nexit 0\n`;
  fs.writeFileSync(path.join(box.bin, name), script, { mode: 0o755 });
}

/** Splits `--dry-run` output into files: a `# /absolute/path` line starts each one. */
function parseDryRun(stdout: string): Map<string, string> {
  const files = new Map<string, string>();
  let current: string | undefined;
  for (const line of stdout.split(/(?<=\n)/)) {
    const header = /^# (\/.*)\n$/.exec(line);
    if (header?.[1]) {
      current = header[1];
      files.set(current, '');
    } else if (current) {
      files.set(current, files.get(current) + line);
    } else {
      assert.fail(`output before the first "# <path>" line: ${line}`);
    }
  }
  return files;
}

describe('keyward service (systemd)', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = makeSandbox();
  });
  afterEach(() => box.kw.cleanup());

  test('install writes exactly the files --dry-run printed, runs daemon-reload and enable --now; uninstall removes them', async () => {
    writeStub(box, 'systemctl');
    const dry = await runCli(box.kw, ['service', 'install', '--dry-run', '--target', 'systemd'], {
      env: box.env,
    });
    assert.equal(dry.code, 0, dry.stderr);
    const printed = parseDryRun(dry.stdout);
    const unitDir = path.join(box.home, '.config', 'systemd', 'user');
    assert.deepEqual(
      [...printed.keys()],
      [path.join(unitDir, 'keyward.service'), path.join(unitDir, 'keyward.socket')],
    );
    assert.match(
      printed.get(path.join(unitDir, 'keyward.service')) ?? '',
      /^ExecStart=".+" ".+main\.js" daemon$/m,
    );
    // The dry run wrote nothing and ran nothing.
    assert.deepEqual(listFiles(box.home), []);
    assert.equal(fs.existsSync(box.kw.home), false);
    assert.deepEqual(box.calls(), []);
    assert.match(dry.stderr, /nothing was written/);

    const install = await runCli(box.kw, ['service', 'install'], { env: box.env });
    assert.equal(install.code, 0, install.stderr);
    assert.equal(install.stdout, '');
    assert.deepEqual(listFiles(box.home).sort(), [...printed.keys()].sort());
    for (const [file, content] of printed) {
      assert.equal(fs.readFileSync(file, 'utf8'), content, file);
      assert.equal(fs.statSync(file).mode & 0o777, 0o644);
    }
    assert.deepEqual(box.calls(), ['--user daemon-reload', '--user enable --now keyward.socket']);
    // ReadWritePaths= needs the home to exist before the unit starts; it is created private.
    assert.equal(fs.statSync(box.kw.home).mode & 0o777, 0o700);
    assert.match(install.stderr, /ran: systemctl --user enable --now keyward\.socket/);
    assert.match(install.stderr, /undo: keyward service uninstall/);

    const status = await runCli(box.kw, ['service', 'status', '--json'], { env: box.env });
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.equal(parsed.installed, true);
    assert.equal(parsed.current, true);
    assert.equal(parsed.enabled, true);
    assert.equal(parsed.listening, false);

    const uninstall = await runCli(box.kw, ['service', 'uninstall'], { env: box.env });
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.deepEqual(listFiles(box.home), []);
    assert.deepEqual(box.calls().slice(-3), [
      '--user disable --now keyward.socket',
      '--user stop keyward.service',
      '--user daemon-reload',
    ]);
    // The vault's home is the user's data: uninstall leaves it alone.
    assert.equal(fs.existsSync(box.kw.home), true);
    const again = await runCli(box.kw, ['service', 'uninstall'], { env: box.env });
    assert.equal(again.code, 0);
    assert.match(again.stderr, /not installed/);
  });

  test('XDG_CONFIG_HOME decides the unit directory', async () => {
    writeStub(box, 'systemctl');
    const config = path.join(box.home, 'cfg');
    const run = await runCli(box.kw, ['service', 'install', '--target', 'systemd'], {
      env: { ...box.env, XDG_CONFIG_HOME: config },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(listFiles(box.home).sort(), [
      path.join(config, 'systemd', 'user', 'keyward.service'),
      path.join(config, 'systemd', 'user', 'keyward.socket'),
    ]);
  });

  test('reinstalling after node or keyward moved updates the units and restarts a running service', async () => {
    writeStub(box, 'systemctl');
    assert.equal(
      (await runCli(box.kw, ['service', 'install', '--target', 'systemd'], { env: box.env })).code,
      0,
    );
    const unit = path.join(box.home, '.config', 'systemd', 'user', 'keyward.service');
    fs.writeFileSync(
      unit,
      fs.readFileSync(unit, 'utf8').replace(/^ExecStart=.*$/m, 'ExecStart=/old/node /old/main.js daemon'),
    );
    const stale = JSON.parse(
      (await runCli(box.kw, ['service', 'status', '--json'], { env: box.env })).stdout,
    );
    assert.equal(stale.current, false);

    const again = await runCli(box.kw, ['service', 'install', '--target', 'systemd'], { env: box.env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`updated ${unit}`));
    assert.doesNotMatch(fs.readFileSync(unit, 'utf8'), /\/old\/node/);
    assert.equal(box.calls().at(-1), '--user try-restart keyward.service');
  });

  test('without systemctl on PATH the units are written and the commands to run are printed; exit 0', async () => {
    const run = await runCli(box.kw, ['service', 'install', '--target', 'systemd'], { env: box.env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(listFiles(box.home).length, 2);
    assert.match(run.stderr, /systemctl is not on PATH/);
    assert.match(run.stderr, /^ {2}systemctl --user daemon-reload$/m);
    assert.match(run.stderr, /^ {2}systemctl --user enable --now keyward\.socket$/m);
    const removed = await runCli(box.kw, ['service', 'uninstall', '--target', 'systemd'], { env: box.env });
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(listFiles(box.home), []);
  });

  test('a failing systemctl (no user session) fails the install with its message and what to run; exit 1', async () => {
    writeStub(box, 'systemctl', { failWith: 'Failed to connect to bus: No medium found' });
    const run = await runCli(box.kw, ['service', 'install', '--target', 'systemd'], { env: box.env });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /systemctl --user daemon-reload failed \(exit 1\): Failed to connect to bus/);
    assert.match(run.stderr, /^ {2}systemctl --user enable --now keyward\.socket$/m);
    assert.deepEqual(box.calls(), ['--user daemon-reload']);
  });

  test('an unknown target is a usage error', async () => {
    const run = await runCli(box.kw, ['service', 'install', '--target', 'upstart'], { env: box.env });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^keyward: INVALID_REQUEST: .*upstart/m);
    assert.deepEqual(listFiles(box.home), []);
  });
});

describe('keyward service (launchd)', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = makeSandbox();
  });
  afterEach(() => box.kw.cleanup());

  test('install writes the plist --dry-run printed and bootstraps it into gui/<uid>; uninstall boots it out', async () => {
    writeStub(box, 'launchctl');
    const uid = os.userInfo().uid;
    const plist = path.join(box.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
    const dry = await runCli(box.kw, ['service', 'install', '--dry-run', '--target', 'launchd'], {
      env: box.env,
    });
    assert.equal(dry.code, 0, dry.stderr);
    const printed = parseDryRun(dry.stdout);
    assert.deepEqual([...printed.keys()], [plist]);
    assert.deepEqual(listFiles(box.home), []);

    const install = await runCli(box.kw, ['service', 'install', '--target', 'launchd'], { env: box.env });
    assert.equal(install.code, 0, install.stderr);
    assert.deepEqual(listFiles(box.home), [plist]);
    assert.equal(fs.readFileSync(plist, 'utf8'), printed.get(plist));
    // launchd does not create the log directory; it holds credential names, so it is private.
    assert.equal(fs.statSync(path.join(box.home, 'Library', 'Logs', 'keyward')).mode & 0o777, 0o700);
    const service = `gui/${uid}/${LAUNCHD_LABEL}`;
    assert.deepEqual(box.calls(), [`print ${service}`, `enable ${service}`, `bootstrap gui/${uid} ${plist}`]);

    const status = JSON.parse(
      (await runCli(box.kw, ['service', 'status', '--json', '--target', 'launchd'], { env: box.env })).stdout,
    );
    assert.equal(status.installed, true);
    assert.equal(status.enabled, true);
    assert.equal(status.running, true);

    const uninstall = await runCli(box.kw, ['service', 'uninstall', '--target', 'launchd'], { env: box.env });
    assert.equal(uninstall.code, 0, uninstall.stderr);
    assert.equal(fs.existsSync(plist), false);
    assert.deepEqual(box.calls().slice(-2), [`print ${service}`, `bootout ${service}`]);
  });
});
