/**
 * The service files `keyward service install` writes: the systemd units pass
 * `systemd-analyze verify --user` without a single warning (even with a space, `%` and `$` in the
 * paths), the socket unit listens where the CLI looks, and the LaunchAgent parses as a property
 * list with the right ProgramArguments.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import {
  LAUNCHD_LABEL,
  renderServiceFiles,
  type ServiceSetup,
  SYSTEMD_SERVICE_UNIT,
  SYSTEMD_SOCKET_UNIT,
} from '../daemon/service/service-files.js';
import { fillTemplate, TemplateError } from '../daemon/service/template.js';
import { resolvePaths } from '../shared/paths.js';
import { CLI, REPO_ROOT } from './helpers/daemon-process.js';

function tempDir(t: TestContext, prefix = 'svc-files-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A setup for a user whose home is `homedir`, with keyward's own variables as given. */
function setupFor(
  homedir: string,
  env: NodeJS.ProcessEnv,
  overrides: Partial<ServiceSetup> = {},
): ServiceSetup {
  const uid = process.getuid?.() ?? 1000;
  return {
    env,
    homedir,
    uid,
    platform: 'linux',
    nodePath: process.execPath,
    cliPath: CLI,
    packageRoot: REPO_ROOT,
    paths: resolvePaths({ env, platform: 'linux', homedir, uid, username: 'u', tmpdir: os.tmpdir() }),
    ...overrides,
  };
}

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const SKIP_SYSTEMD = hasBinary('systemd-analyze')
  ? false
  : 'systemd-analyze is not installed (Debian package "systemd"; .ci/run installs it)';

/** Runs `systemd-analyze verify --user` on the rendered units; returns its exit code and output. */
function verify(
  t: TestContext,
  files: { path: string; content: string }[],
): { code: number; output: string } {
  const dir = tempDir(t, 'svc-verify-');
  const runtime = path.join(dir, 'runtime');
  fs.mkdirSync(runtime, { mode: 0o700 });
  const unitDir = path.join(dir, 'units');
  fs.mkdirSync(unitDir);
  const written = files.map((f) => {
    const target = path.join(unitDir, path.basename(f.path));
    fs.writeFileSync(target, f.content);
    return target;
  });
  // A private HOME and runtime dir: verify loads the user search path, and must not see the real one.
  const result = spawnSync('systemd-analyze', ['verify', '--user', ...written], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      XDG_RUNTIME_DIR: runtime,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
    },
    encoding: 'utf8',
  });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}`.trim() };
}

function line(content: string, key: string): string[] {
  return content
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

describe('systemd units', () => {
  test('default paths: the socket unit listens on %t/keyward/keyward.sock, where the CLI looks; no keyward variables', (t) => {
    const home = tempDir(t);
    const runtime = path.join(home, 'run-user');
    const setup = setupFor(home, { XDG_RUNTIME_DIR: runtime });
    const [service, socket] = renderServiceFiles('systemd', setup);
    assert.equal(service?.path, path.join(home, '.config', 'systemd', 'user', SYSTEMD_SERVICE_UNIT));
    assert.equal(socket?.path, path.join(home, '.config', 'systemd', 'user', SYSTEMD_SOCKET_UNIT));
    // The CLI resolves $XDG_RUNTIME_DIR/keyward/keyward.sock; systemd expands %t to the same directory.
    assert.equal(setup.paths.socket, path.join(runtime, 'keyward', 'keyward.sock'));
    assert.deepEqual(line(socket?.content ?? '', 'ListenStream'), ['%t/keyward/keyward.sock']);
    assert.deepEqual(line(socket?.content ?? '', 'SocketMode'), ['0600']);
    assert.deepEqual(line(socket?.content ?? '', 'DirectoryMode'), ['0700']);
    assert.deepEqual(line(service?.content ?? '', 'Environment'), []);
    assert.deepEqual(line(service?.content ?? '', 'ExecStart'), [`"${process.execPath}" "${CLI}" daemon`]);
    assert.deepEqual(line(service?.content ?? '', 'ReadWritePaths'), [
      `"-${path.join(home, '.local', 'share', 'keyward')}"`,
    ]);
    assert.doesNotMatch(
      `${service?.content}${socket?.content}`,
      /@[A-Z_]+@/,
      'a placeholder was left unfilled',
    );
  });

  test('hardening: the settings a user service can carry, and no MemoryDenyWriteExecute (V8 JIT)', (t) => {
    const [service] = renderServiceFiles(
      'systemd',
      setupFor(tempDir(t), { XDG_RUNTIME_DIR: '/run/user/1000' }),
    );
    const content = service?.content ?? '';
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      // Without PrivateUsers= a user manager silently skips the three below (systemd-user-manager.test.ts).
      ['PrivateUsers', 'yes'],
      ['PrivateTmp', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'read-only'],
      ['LimitCORE', '0'],
      ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'],
      ['UMask', '0077'],
      ['Restart', 'on-failure'],
      ['LockPersonality', 'yes'],
      ['StandardError', 'journal'],
    ] as const) {
      assert.deepEqual(line(content, key), [value], key);
    }
    assert.deepEqual(line(content, 'MemoryDenyWriteExecute'), []);
  });

  test('explicit KEYWARD_HOME and KEYWARD_SOCKET reach the daemon and the socket unit', (t) => {
    const home = tempDir(t);
    const kwHome = path.join(home, 'state');
    const socketPath = path.join(home, 'sock', 'kw.sock');
    const setup = setupFor(home, {
      XDG_RUNTIME_DIR: '/run/user/1000',
      KEYWARD_HOME: kwHome,
      KEYWARD_SOCKET: socketPath,
    });
    const [service, socket] = renderServiceFiles('systemd', setup);
    assert.deepEqual(line(service?.content ?? '', 'Environment'), [
      `"KEYWARD_HOME=${kwHome}"`,
      `"KEYWARD_SOCKET=${socketPath}"`,
    ]);
    assert.deepEqual(line(socket?.content ?? '', 'ListenStream'), [socketPath]);
    assert.deepEqual(line(service?.content ?? '', 'ReadWritePaths'), [`"-${kwHome}"`]);
  });

  test("without XDG_RUNTIME_DIR the socket unit listens on the CLI's fallback path and tells the daemon", (t) => {
    const home = tempDir(t);
    const setup = setupFor(home, {});
    const [service, socket] = renderServiceFiles('systemd', setup);
    const fallback = path.join(home, '.local', 'share', 'keyward', 'run', 'keyward.sock');
    assert.equal(setup.paths.socket, fallback);
    assert.deepEqual(line(socket?.content ?? '', 'ListenStream'), [fallback]);
    assert.deepEqual(line(service?.content ?? '', 'Environment'), [`"KEYWARD_SOCKET=${fallback}"`]);
  });

  test('XDG_DATA_HOME moves the home: the unit names it, since the user manager does not set it', (t) => {
    const home = tempDir(t);
    const setup = setupFor(home, {
      XDG_RUNTIME_DIR: '/run/user/1000',
      XDG_DATA_HOME: path.join(home, 'data'),
    });
    const [service] = renderServiceFiles('systemd', setup);
    assert.deepEqual(line(service?.content ?? '', 'Environment'), [
      `"KEYWARD_HOME=${path.join(home, 'data', 'keyward')}"`,
    ]);
  });

  test('a node path systemd cannot run (a quote in it) is refused with the reason', (t) => {
    const setup = setupFor(tempDir(t), {}, { nodePath: '/opt/node "20"/bin/node' });
    assert.throws(() => renderServiceFiles('systemd', setup), /quote or a backslash, which systemd refuses/);
  });

  test('a path with a newline is refused, not written into a unit', (t) => {
    const home = tempDir(t);
    const setup = setupFor(home, { KEYWARD_HOME: path.join(home, 'bad\nExecStartPre=/bin/sh') });
    assert.throws(() => renderServiceFiles('systemd', setup), TemplateError);
    assert.throws(() => renderServiceFiles('launchd', setup), TemplateError);
  });

  test('a socket path too long for sun_path is refused with the fix', (t) => {
    const home = tempDir(t);
    const setup = setupFor(home, { KEYWARD_SOCKET: `/tmp/${'x'.repeat(120)}/kw.sock` });
    assert.throws(() => renderServiceFiles('systemd', setup), /too long for a Unix socket.*KEYWARD_SOCKET/);
  });

  test('systemd-analyze verify --user accepts the units without a warning', { skip: SKIP_SYSTEMD }, (t) => {
    const home = tempDir(t);
    const result = verify(
      t,
      renderServiceFiles('systemd', setupFor(home, { XDG_RUNTIME_DIR: '/run/user/1000' })),
    );
    assert.equal(result.code, 0, result.output);
    assert.equal(result.output, '');
  });

  test("paths with a space, %, $ and a quote survive systemd's parsing (verify finds the node binary and the home)", {
    skip: SKIP_SYSTEMD,
  }, (t) => {
    const base = tempDir(t);
    const odd = path.join(base, 'dir 100% $HOME');
    fs.mkdirSync(odd);
    // verify checks that ExecStart's program exists: a mangled path would make it complain.
    const node = path.join(odd, 'node');
    fs.symlinkSync(process.execPath, node);
    const setup = setupFor(
      odd,
      { KEYWARD_HOME: path.join(odd, 'kw "home"'), KEYWARD_SOCKET: path.join(odd, 's%.sock') },
      { nodePath: node, cliPath: path.join(odd, "it's", 'main.js') },
    );
    const files = renderServiceFiles('systemd', setup);
    const result = verify(t, files);
    assert.equal(result.code, 0, result.output);
    assert.equal(result.output, '');
    // The program path is literal; in an argument $ is doubled so systemd does not expand $HOME.
    assert.deepEqual(line(files[0]?.content ?? '', 'ExecStart'), [
      `"${base}/dir 100%% $HOME/node" "${base}/dir 100%% $$HOME/it's/main.js" daemon`,
    ]);
    assert.deepEqual(line(files[0]?.content ?? '', 'ReadWritePaths'), [
      `"-${base}/dir 100%% $HOME/kw \\"home\\""`,
    ]);
    // The control: a node path that does not exist is reported, so the check above has teeth.
    const missing = renderServiceFiles('systemd', { ...setup, nodePath: path.join(odd, 'no-node') });
    assert.match(verify(t, missing).output, /not executable|No such file/);
  });
});

/** Parses a plist to JSON with plutil (macOS) or python3's plistlib; undefined when neither exists. */
function parsePlist(file: string): unknown {
  if (hasBinary('plutil')) {
    execFileSync('plutil', ['-lint', file]);
    return JSON.parse(execFileSync('plutil', ['-convert', 'json', '-o', '-', file], { encoding: 'utf8' }));
  }
  const script =
    'import json,plistlib,sys\nwith open(sys.argv[1],"rb") as f: print(json.dumps(plistlib.load(f)))';
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' }));
}

const SKIP_PLIST =
  hasBinary('plutil') || hasBinary('python3')
    ? false
    : 'neither plutil nor python3 is installed (Debian package "python3"; .ci/run installs it)';

describe('LaunchAgent', () => {
  test('parses as a property list that runs node <cli> daemon at load and after a crash', {
    skip: SKIP_PLIST,
  }, (t) => {
    const home = tempDir(t);
    const [plist] = renderServiceFiles('launchd', setupFor(home, {}));
    assert.equal(plist?.path, path.join(home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`));
    const file = path.join(tempDir(t), 'agent.plist');
    fs.writeFileSync(file, plist?.content ?? '');
    assert.deepEqual(parsePlist(file), {
      Label: LAUNCHD_LABEL,
      ProgramArguments: [process.execPath, CLI, 'daemon'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ThrottleInterval: 5,
      ExitTimeOut: 20,
      Umask: 0o077,
      StandardOutPath: path.join(home, 'Library', 'Logs', 'keyward', 'keyward.log'),
      StandardErrorPath: path.join(home, 'Library', 'Logs', 'keyward', 'keyward.log'),
    });
  });

  test('explicit variables and XML-special characters come back exactly', { skip: SKIP_PLIST }, (t) => {
    const home = path.join(tempDir(t), 'Tom & Jerry <dev>');
    const env = { KEYWARD_HOME: path.join(home, "it's"), KEYWARD_SOCKET: path.join(home, 's.sock') };
    const [plist] = renderServiceFiles(
      'launchd',
      setupFor(home, env, { nodePath: '/opt/node "20"/bin/node' }),
    );
    const file = path.join(tempDir(t), 'agent.plist');
    fs.writeFileSync(file, plist?.content ?? '');
    const parsed = parsePlist(file) as {
      ProgramArguments: string[];
      EnvironmentVariables: Record<string, string>;
    };
    assert.deepEqual(parsed.ProgramArguments, ['/opt/node "20"/bin/node', CLI, 'daemon']);
    assert.deepEqual(parsed.EnvironmentVariables, env);
  });
});

describe('fillTemplate', () => {
  test('drops a line whose only placeholder is empty, fills the rest once, and refuses unknown names', () => {
    assert.equal(fillTemplate('a=@A@\n@B@\nc', { A: '@B@', B: '' }), 'a=@B@\nc');
    assert.throws(() => fillTemplate('x=@NOPE@', {}), /@NOPE@/);
  });
});
