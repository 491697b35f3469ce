/**
 * A passphrase vault through the real daemon: it starts locked and answers VAULT_LOCKED,
 * `keyward unlock` opens it (a wrong passphrase changes nothing), and under a service manager a
 * passphrase file (KEYWARD_PASSPHRASE_FILE, or systemd's credential) unlocks it at start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeHome, runCli, socketRequest, startDaemon } from './helpers/daemon-process.js';

const PASSPHRASE = 'correct horse battery staple';

test('a passphrase vault starts locked, unlocks through the CLI or a service passphrase file', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const init = await runCli(home, ['init', '--key-store', 'passphrase'], { input: `${PASSPHRASE}\n` });
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stderr, /keyward unlock/);
  assert.equal((await runCli(home, ['init'])).code, 1, 'a second init refuses');

  let daemon = await startDaemon(home);
  t.after(() => daemon.stop('SIGKILL'));
  const locked = await runCli(home, ['add', 'k', '--api-key'], { input: 'value-1' });
  assert.equal(locked.code, 1);
  assert.match(locked.stderr, /^keyward: VAULT_LOCKED: .*keyward unlock/m);
  const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
  assert.equal(status.vault.key_store, 'passphrase');
  assert.equal(status.vault.locked, true);

  const wrong = await runCli(home, ['unlock'], { input: 'not it' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /VAULT_LOCKED/);
  const right = await runCli(home, ['unlock'], { input: `${PASSPHRASE}\n` });
  assert.equal(right.code, 0, right.stderr);
  assert.equal((await runCli(home, ['add', 'k', '--api-key'], { input: 'value-1' })).code, 0);
  assert.equal((await runCli(home, ['token', 'k'])).stdout, 'value-1\n');
  assert.equal(await daemon.stop(), 0);

  // Under a service manager: a 0600 passphrase file unlocks at start.
  const file = path.join(path.dirname(home.home), 'passphrase');
  fs.writeFileSync(file, `${PASSPHRASE}\n`, { mode: 0o600 });
  daemon = await startDaemon(home, { env: { KEYWARD_PASSPHRASE_FILE: file } });
  const served = await socketRequest(home.socket, 'POST', '/v1/credentials/k/token', { body: {} });
  assert.equal(served.status, 200);
  assert.equal(served.body.access_token, 'value-1');
  assert.ok(!daemon.output().includes(PASSPHRASE));
  assert.equal(await daemon.stop(), 0);

  // A passphrase file others can read is refused, naming it.
  fs.chmodSync(file, 0o644);
  const refused = await startDaemon(home, { env: { KEYWARD_PASSPHRASE_FILE: file }, wait: false });
  assert.equal(await refused.exited, 1);
  assert.ok(refused.output().includes(file), refused.output());
});
