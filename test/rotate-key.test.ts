/**
 * `keyward rotate-key` through the running daemon: file → passphrase → (new passphrase) → file,
 * with restarts in between. Every credential stays readable, a wrong passphrase (to unlock, or as
 * the current one when leaving the passphrase store) changes nothing, and the audit chain, keyed
 * from the data key that never changes, stays intact.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const KEYS = { a: 'sk-rotate-A-5d1c-unmistakable', b: 'sk-rotate-B-9e7f-unmistakable' };

describe('keyward rotate-key', () => {
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    for (const [name, key] of Object.entries(KEYS)) {
      const added = await runCli(home, ['add', name, '--api-key'], { input: `${key}\n` });
      assert.equal(added.code, 0, added.stderr);
    }
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  const keyFile = () => path.join(home.home, 'vault.key');
  const keyStore = async () => {
    const status = await runCli(home, ['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    return JSON.parse(status.stdout).vault.key_store;
  };
  const restart = async () => {
    assert.equal(await daemon.stop(), 0);
    daemon = await startDaemon(home);
  };
  async function assertReadable(): Promise<void> {
    for (const [name, key] of Object.entries(KEYS)) {
      const token = await runCli(home, ['token', name]);
      assert.equal(token.code, 0, token.stderr);
      assert.equal(token.stdout, `${key}\n`);
    }
  }

  test('file → passphrase: credentials stay readable, the key file goes', async () => {
    assert.equal(await keyStore(), 'file');
    assert.ok(fs.existsSync(keyFile()));
    const res = await runCli(home, ['rotate-key', '--key-store', 'passphrase'], { input: 'pw-one\n' });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /now wrapped by the passphrase key store \(from file\)/);
    assert.equal(res.stdout, '');
    assert.equal(await keyStore(), 'passphrase');
    assert.equal(fs.existsSync(keyFile()), false, 'the old key file still opens the vault');
    await assertReadable();
  });

  test('a wrong passphrase never changes or corrupts the vault', async () => {
    const leave = await runCli(home, ['rotate-key', '--key-store', 'file', '--yes'], { input: 'not-it\n' });
    assert.equal(leave.code, 1);
    assert.match(leave.stderr, /^keyward: FORBIDDEN: wrong current passphrase/m);
    assert.equal(await keyStore(), 'passphrase');
    assert.equal(fs.existsSync(keyFile()), false);

    await restart();
    const locked = await runCli(home, ['token', 'a']);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /VAULT_LOCKED/);
    const wrong = await runCli(home, ['unlock'], { input: 'pw-wrong\n' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase/);
    const rotateLocked = await runCli(home, ['rotate-key', '--key-store', 'file'], { input: 'pw-one\n' });
    assert.equal(rotateLocked.code, 1);
    assert.match(rotateLocked.stderr, /VAULT_LOCKED: .*keyward unlock/);

    const right = await runCli(home, ['unlock'], { input: 'pw-one\n' });
    assert.equal(right.code, 0, right.stderr);
    await assertReadable();
  });

  test('a new passphrase needs the current one, then replaces it', async () => {
    const missing = await runCli(home, ['rotate-key', '--key-store', 'passphrase'], { input: 'pw-one\n' });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /new passphrase is missing/);
    const change = await runCli(home, ['rotate-key', '--key-store', 'passphrase'], {
      input: 'pw-one\npw-two\n',
    });
    assert.equal(change.code, 0, change.stderr);
    await restart();
    assert.equal((await runCli(home, ['unlock'], { input: 'pw-one\n' })).code, 1);
    assert.equal((await runCli(home, ['unlock'], { input: 'pw-two\n' })).code, 0);
    await assertReadable();
  });

  test('passphrase → file: readable after a restart with no unlock, and the audit chain held', async () => {
    const res = await runCli(home, ['rotate-key', '--key-store', 'file', '--yes'], { input: 'pw-two\n' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(fs.statSync(keyFile()).mode & 0o777, 0o600);
    await restart();
    assert.equal(await keyStore(), 'file');
    await assertReadable();

    const audit = await runCli(home, ['audit', '--json']);
    const rotations = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'key.rotate')
      .map((e) => [e.target, e.outcome]);
    assert.deepEqual(rotations, [
      ['passphrase', 'ok'],
      ['file', 'error'],
      ['passphrase', 'ok'],
      ['file', 'ok'],
    ]);
    assert.ok(!audit.stdout.includes('pw-one') && !audit.stdout.includes('pw-two'));
    const verify = await runCli(home, ['audit', '--verify']);
    assert.equal(verify.code, 0, verify.stdout);
    for (const secret of ['pw-one', 'pw-two', ...Object.values(KEYS)]) {
      assert.ok(!daemon.output().includes(secret));
    }
  });

  test('with the daemon down it refuses and says how to go on (exit 3)', async () => {
    await daemon.stop();
    const res = await runCli(home, ['rotate-key', '--key-store', 'passphrase'], { input: 'x\n' });
    assert.equal(res.code, 3);
    assert.match(res.stderr, /rotate-key runs in the daemon.*keyward daemon/);
    daemon = await startDaemon(home);
  });
});
