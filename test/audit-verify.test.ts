/**
 * `keyward audit --verify` against a real log written by the real daemon: it passes as written,
 * and after an edit, a deletion, a reordering or a cut end it exits 1 naming the line. A symlinked
 * audit.log keeps the daemon from starting.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

describe('keyward audit --verify on a real log', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let file: string;
  let original: string;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    const added = await runCli(home, ['add', 'a', '--api-key'], { input: 'sk-audit-verify' });
    assert.equal(added.code, 0, added.stderr);
    for (let i = 0; i < 5; i++) {
      const res = await socketRequest(home.socket, 'POST', '/v1/credentials/a/token', { body: {} });
      assert.equal(res.status, 200);
    }
    await socketRequest(home.socket, 'POST', '/v1/credentials/missing/token', { body: {} });
    file = path.join(home.home, 'audit.log');
    original = fs.readFileSync(file, 'utf8');
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  const lines = () => original.split('\n').filter(Boolean);
  const write = (content: string[]) => fs.writeFileSync(file, `${content.join('\n')}\n`);
  const verify = () => runCli(home, ['audit', '--verify']);

  test('passes on the log as written, and lists it', async () => {
    assert.equal(lines().length, 7);
    const res = await verify();
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /^audit log intact: 7 lines \(.*audit\.log\)\n$/);
    const table = await runCli(home, ['audit']);
    assert.match(table.stdout, /credential\.add/);
    assert.match(table.stdout, /error \(NOT_FOUND\)/);
    assert.ok(!table.stdout.includes('sk-audit-verify'));
    const json = await runCli(home, ['audit', '--json']);
    const entries = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      entries.map((e) => e.seq),
      [1, 2, 3, 4, 5, 6, 7],
    );
  });

  test('an edited line fails, named', async () => {
    const edited = lines();
    edited[2] = (edited[2] as string).replace('"outcome":"ok"', '"outcome":"denied"');
    assert.notEqual(edited[2], lines()[2]);
    write(edited);
    const res = await verify();
    assert.equal(res.code, 1);
    assert.match(
      res.stdout,
      /NOT intact: .*audit\.log line 3 \(seq 3\): its MAC does not match: the line was edited/,
    );
    write(lines());
    assert.equal((await verify()).code, 0);
  });

  test('a removed line fails, naming the line after the gap', async () => {
    write(lines().filter((_, i) => i !== 3));
    const res = await verify();
    assert.equal(res.code, 1);
    assert.match(res.stdout, /audit\.log line 4 \(seq 5\): .*a line was removed before it/);
    write(lines());
  });

  test('reordered lines fail, named', async () => {
    const swapped = lines();
    [swapped[4], swapped[5]] = [swapped[5] as string, swapped[4] as string];
    write(swapped);
    const res = await verify();
    assert.equal(res.code, 1);
    assert.match(res.stdout, /audit\.log line 5 \(seq 6\): .*reordered/);
    write(lines());
  });

  test('a cut end fails too, because the daemon knows its last line', async () => {
    write(lines().slice(0, -2));
    const res = await verify();
    assert.equal(res.code, 1);
    assert.match(res.stdout, /ends at seq 5 but seq 7 was written: the last lines were removed/);
    write(lines());
    const json = await runCli(home, ['audit', '--verify', '--json']);
    assert.equal(json.code, 0);
    assert.equal(JSON.parse(json.stdout).intact, true);
  });
});

test('the daemon refuses a symlinked audit.log, naming it', {
  skip: process.platform === 'win32',
}, async () => {
  const home = makeHome();
  try {
    const init = await runCli(home, ['init', '--key-store', 'file']);
    assert.equal(init.code, 0, init.stderr);
    const decoy = path.join(path.dirname(home.home), 'decoy.log');
    fs.writeFileSync(decoy, '', { mode: 0o600 });
    fs.symlinkSync(decoy, path.join(home.home, 'audit.log'));
    const daemon = await startDaemon(home, { wait: false });
    const code = await daemon.exited;
    assert.notEqual(code, 0);
    assert.match(daemon.output(), /audit\.log: it is a symbolic link/);
    assert.equal(fs.readFileSync(decoy, 'utf8'), '');
  } finally {
    home.cleanup();
  }
});
