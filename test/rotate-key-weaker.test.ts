/**
 * Moving the key to a weaker store asks first (issue 12 item 9): `rotate-key --key-store file`
 * on a passphrase (or keychain) vault puts a key file next to vault.db, after which a copy of the
 * two opens every secret. A script (no TTY) must say `--yes`; on a terminal the user types `yes`.
 * Runs against the real daemon; the terminal is played by streams marked as a TTY.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CliError } from '../daemon/cli/cli-error.js';
import { runRotateKey } from '../daemon/cli/commands/rotate-key.js';
import { createContext } from '../daemon/cli/context.js';
import type { Io } from '../daemon/cli/io.js';
import { currentPathInputs, resolvePaths } from '../shared/paths.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const PASSPHRASE = 'pw-weaker-store';

/** A terminal: stdin marked as a TTY, answering `answer` to the question and the passphrase after it. */
function terminal(answer: string): { io: Io; said: () => string } {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let said = '';
  stderr.on('data', (d: Buffer) => {
    said += d.toString();
    if (d.toString().includes('type "yes"')) stdin.write(`${answer}\n`);
    if (d.toString().includes('current vault passphrase')) stdin.write(`${PASSPHRASE}\n`);
  });
  stdout.resume();
  return { io: { stdin, stdout, stderr }, said: () => said };
}

describe('rotate-key to a weaker store', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  const keyStore = async (): Promise<string> =>
    JSON.parse((await runCli(home, ['status', '--json'])).stdout).vault.key_store;
  const context = (io: Io) =>
    createContext({
      io,
      paths: resolvePaths({
        ...currentPathInputs(),
        env: { KEYWARD_HOME: home.home, KEYWARD_SOCKET: home.socket },
      }),
    });

  before(async () => {
    home = makeHome();
    const init = await runCli(home, ['init', '--key-store', 'passphrase'], { input: `${PASSPHRASE}\n` });
    assert.equal(init.code, 0, init.stderr);
    daemon = await startDaemon(home);
    const unlock = await runCli(home, ['unlock'], { input: `${PASSPHRASE}\n` });
    assert.equal(unlock.code, 0, unlock.stderr);
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  test('passphrase → file from a script without --yes: refused, nothing changes', async () => {
    const res = await runCli(home, ['rotate-key', '--key-store', 'file'], { input: `${PASSPHRASE}\n` });
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /^keyward: INVALID_REQUEST: moving the key from the passphrase key store to a key file .* add --yes/,
    );
    assert.equal(await keyStore(), 'passphrase');
    assert.equal(fs.existsSync(path.join(home.home, 'vault.key')), false);
  });

  test('on a terminal, anything but "yes" leaves the key where it is', async () => {
    const tty = terminal('y');
    await assert.rejects(
      runRotateKey({ keyStore: 'file' }, context(tty.io)),
      (err: unknown) =>
        err instanceof CliError && err.code === 'INVALID_REQUEST' && /not confirmed/.test(err.message),
    );
    assert.match(tty.said(), /warning: moving the key from the passphrase key store to a key file/);
    assert.equal(await keyStore(), 'passphrase');
    assert.equal(fs.existsSync(path.join(home.home, 'vault.key')), false);
  });

  test('on a terminal, "yes" moves it; moving it back to a passphrase asks nothing', async () => {
    const tty = terminal('yes');
    await runRotateKey({ keyStore: 'file' }, context(tty.io));
    assert.equal(await keyStore(), 'file');
    assert.ok(fs.existsSync(path.join(home.home, 'vault.key')));

    const back = await runCli(home, ['rotate-key', '--key-store', 'passphrase'], {
      input: `${PASSPHRASE}\n`,
    });
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await keyStore(), 'passphrase');
  });

  test('--yes lets a script do it', async () => {
    const res = await runCli(home, ['rotate-key', '--key-store', 'file', '--yes'], {
      input: `${PASSPHRASE}\n`,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(await keyStore(), 'file');
  });
});
