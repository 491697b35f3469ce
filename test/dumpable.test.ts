/**
 * The daemon makes itself undumpable at start (issue 12 item 9): RLIMIT_CORE 0 and, on Linux,
 * PR_SET_DUMPABLE 0 through the peer-credential addon, so no core file holds its keys and no
 * process of the same uid can attach a debugger or read its memory via /proc. The kernel shows
 * it from outside: the /proc/<pid> files of a non-dumpable process belong to root (proc(5)), so
 * the test runs the daemon as uid 65534 and looks. Without the addon the daemon still serves and
 * says what it could not do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { peerCredSupport } from '../daemon/peer-cred.js';
import { CLI, makeHome, startDaemon } from './helpers/daemon-process.js';

const NOBODY = 65534;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const canRun = process.platform === 'linux' && isRoot && peerCredSupport().available;

/** Waits until `read()` says yes, or fails after `ms`. */
async function until(read: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!read()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the daemon is not dumpable: its /proc files turn root-owned and its core limit is 0', {
  skip: !canRun && 'needs Linux, root (to run the daemon as another uid) and the built addon',
}, async (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-dump-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  fs.chmodSync(base, 0o711);
  const home = path.join(base, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  fs.chownSync(home, NOBODY, NOBODY);
  const daemon = spawn(process.execPath, [CLI, 'daemon'], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: base,
    env: {
      PATH: process.env.PATH,
      KEYWARD_HOME: home,
      KEYWARD_SOCKET: path.join(home, 'run', 'keyward.sock'),
      KEYWARD_TESTING: '1',
      KEYWARD_TEST_FAST_KDF: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  daemon.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  t.after(async () => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await exited;
  });
  await until(
    () => output.includes('keyward daemon listening') || daemon.exitCode !== null,
    20_000,
    () => output,
  );
  assert.equal(daemon.exitCode, null, output);

  const pid = daemon.pid as number;
  // A dumpable process owns its /proc files; after PR_SET_DUMPABLE 0 the kernel gives them to root.
  assert.equal(fs.statSync(`/proc/${pid}/environ`).uid, 0, 'the daemon is not dumpable');
  assert.equal(fs.statSync(`/proc/${pid}`).uid, NOBODY, 'it does run as nobody');
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  assert.match(limits, /^Max core file size\s+0\s+0\s/m);
  assert.doesNotMatch(output, /could not make the daemon undumpable/);
});

test('without the addon the daemon still serves, and says it could not make itself undumpable', async (t) => {
  const home = makeHome({ KEYWARD_TEST_NO_ADDON: '1' });
  t.after(() => home.cleanup());
  const daemon = await startDaemon(home);
  t.after(() => daemon.stop());
  assert.match(daemon.output(), /KEYWARD_TEST_NO_ADDON[^\n]*could not make the daemon undumpable/);
  assert.match(daemon.output(), /peer credentials are unavailable/);
});
