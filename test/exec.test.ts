/**
 * `keyward exec` through the real CLI and daemon: the token reaches the child's environment and
 * no output or argv; stdin, the exit code and signals pass through (SIGTERM, SIGINT, SIGHUP are
 * forwarded, and a child killed by a signal takes keyward down with the same signal).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CLI,
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const SECRET = `ghp_exec_${crypto.randomBytes(12).toString('hex')}`;
const sha256 = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

/** A child script: prints what it can prove about its environment without printing the token. */
const REPORT = `
  const fs = require('node:fs');
  const t = process.env.GH_TOKEN ?? '';
  const parentArgv = process.platform === 'linux' ? fs.readFileSync('/proc/' + process.ppid + '/cmdline', 'utf8') : '';
  console.log(JSON.stringify({
    sha: require('node:crypto').createHash('sha256').update(t).digest('hex'),
    same: process.env.ALSO === t,
    kept: process.env.KEEP_ME,
    parentArgvHasToken: t !== '' && parentArgv.includes(t),
  }));
`;

/** A long-running child that reports `ready`, and on `signal` (when handled) prints it and exits 42. */
function waiter(handled: boolean): string {
  const handlers = handled
    ? `for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => { console.log('got ' + s); process.exit(42); });`
    : '';
  return `${handlers} console.log('ready'); setInterval(() => {}, 1000);`;
}

/** Starts `keyward exec` as a process we can signal; resolves once the child said `ready`. */
async function startExec(
  home: TestHome,
  childScript: string,
): Promise<{ pid: number; done: Promise<{ code: number | null; signal: string | null; stdout: string }> }> {
  const child = spawn(
    process.execPath,
    [CLI, 'exec', '--env', 'GH_TOKEN=gh', '--', process.execPath, '-e', childScript],
    {
      env: home.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('ready')) ready();
  });
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout })),
  );
  await isReady;
  return { pid: child.pid as number, done };
}

describe('keyward exec', () => {
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    const add = await runCli(home, ['add', 'gh', '--api-key'], { input: `${SECRET}\n` });
    assert.equal(add.code, 0, add.stderr);
  });

  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  test('puts the token in the child environment and in no output or argv', async () => {
    const res = await runCli(
      home,
      ['exec', '--env', 'GH_TOKEN=gh', '--env', 'ALSO=gh', '--', process.execPath, '-e', REPORT],
      { env: { KEEP_ME: 'yes' } },
    );
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.equal(report.sha, sha256(SECRET));
    assert.equal(report.same, true);
    assert.equal(report.kept, 'yes', 'the rest of the environment is inherited');
    assert.equal(report.parentArgvHasToken, false);
    assert.ok(!res.stdout.includes(SECRET) && !res.stderr.includes(SECRET));
    assert.ok(!daemon.output().includes(SECRET), 'the daemon log holds no token');
  });

  test('the child never inherits KEYWARD_CLIENT_TOKEN or the admin token, under any name', async () => {
    const added = await runCli(home, ['client', 'add', 'exec-host', '--allow', 'gh']);
    assert.equal(added.code, 0, added.stderr);
    const clientToken = added.stdout.trim();
    const adminToken = fs.readFileSync(path.join(home.home, 'admin.token'), 'utf8').trim();
    // The child reports each variable by name and hash, so no token reaches this test's output.
    const listEnv = `const c = require('node:crypto'); console.log(JSON.stringify(Object.entries(process.env).map(([k, v]) => [k, c.createHash('sha256').update(v).digest('hex'), v.length])));`;
    const res = await runCli(home, ['exec', '--env', 'GH_TOKEN=gh', '--', process.execPath, '-e', listEnv], {
      env: {
        KEYWARD_CLIENT_TOKEN: clientToken,
        COPY_OF_CLIENT: clientToken,
        AUTH_HEADER: `Bearer ${clientToken}`,
        COPY_OF_ADMIN: adminToken,
        KEEP_ME: 'yes',
      },
    });
    assert.equal(res.code, 0, res.stderr);
    const seen = JSON.parse(res.stdout) as Array<[string, string, number]>;
    const names = seen.map(([name]) => name);
    assert.ok(!names.includes('KEYWARD_CLIENT_TOKEN'), 'KEYWARD_CLIENT_TOKEN reached the child');
    for (const [name, hash] of seen) {
      assert.notEqual(hash, sha256(clientToken), `${name} holds the client token`);
      assert.notEqual(hash, sha256(adminToken), `${name} holds the admin token`);
    }
    assert.deepEqual(
      names.filter((n) => ['COPY_OF_CLIENT', 'AUTH_HEADER', 'COPY_OF_ADMIN'].includes(n)),
      [],
    );
    // It still got the token it was given (read as that client) and the rest of the environment.
    assert.ok(seen.some(([name, hash]) => name === 'GH_TOKEN' && hash === sha256(SECRET)));
    assert.ok(names.includes('KEEP_ME'));
    assert.ok(!res.stdout.includes(clientToken) && !res.stderr.includes(clientToken));
  });

  test('passes stdin through and returns the child exit code', async () => {
    const echo = await runCli(
      home,
      ['exec', '--env', 'GH_TOKEN=gh', '--', process.execPath, '-e', 'process.stdin.pipe(process.stdout)'],
      { input: '{"jsonrpc":"2.0"}\n' },
    );
    assert.equal(echo.code, 0, echo.stderr);
    assert.equal(echo.stdout, '{"jsonrpc":"2.0"}\n');

    const failing = await runCli(home, [
      'exec',
      '--env',
      'GH_TOKEN=gh',
      '--',
      process.execPath,
      '-e',
      'process.exit(7)',
    ]);
    assert.equal(failing.code, 7);
    assert.equal(failing.stderr, '');
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    test(`forwards ${signal} to the child and exits with its code`, async () => {
      const run = await startExec(home, waiter(true));
      process.kill(run.pid, signal);
      const result = await run.done;
      assert.equal(result.code, 42);
      assert.match(result.stdout, new RegExp(`got ${signal}`));
    });
  }

  test('dies by the same signal when the child is killed by it', async () => {
    const run = await startExec(home, waiter(false));
    process.kill(run.pid, 'SIGTERM');
    const result = await run.done;
    assert.equal(result.signal, 'SIGTERM');
    assert.equal(result.code, null);
  });

  test('runs nothing when a token cannot be had, and says why', async () => {
    const missing = await runCli(home, [
      'exec',
      '--env',
      'GH_TOKEN=nope',
      '--',
      process.execPath,
      '-e',
      'console.log("ran")',
    ]);
    assert.equal(missing.code, 4);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /^keyward: NOT_FOUND: /m);

    const badBinding = await runCli(home, ['exec', '--env', 'GH-TOKEN=gh', '--', 'true']);
    assert.equal(badBinding.code, 2);
    assert.match(badBinding.stderr, /--env takes VAR=<credential>/);

    const noEnv = await runCli(home, ['exec', '--', 'true']);
    assert.equal(noEnv.code, 2);

    const notFound = await runCli(home, ['exec', '--env', 'GH_TOKEN=gh', '--', '/nonexistent/mcp-server']);
    assert.equal(notFound.code, 127);
    assert.match(notFound.stderr, /command not found: \/nonexistent\/mcp-server/);
    assert.ok(!notFound.stderr.includes(SECRET));
  });
});
