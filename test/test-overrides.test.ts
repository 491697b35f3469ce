/**
 * Test-only switches (issue 12 item 9): `KEYWARD_TEST_FAST_KDF=1` left in a real environment
 * made every new passphrase vault use Argon2id INTERACTIVE limits, silently. A `KEYWARD_TEST_*`
 * switch now counts only with `KEYWARD_TESTING=1`, and the daemon says at start which are active
 * and which it ignored.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import sodium from 'sodium-native';
import { testOverride, testOverrideReport, testOverrideWarnings } from '../daemon/test-overrides.js';
import { makeHome, runCli, startDaemon } from './helpers/daemon-process.js';

function kdfParams(home: string): { opslimit: number; memlimit: number } {
  const db = new Database(path.join(home, 'vault.db'), { readonly: true });
  try {
    const row = db.prepare('SELECT params FROM vault_key').get() as { params: string };
    return JSON.parse(row.params) as { opslimit: number; memlimit: number };
  } finally {
    db.close();
  }
}

test('a stray KEYWARD_TEST_FAST_KDF=1 outside a test run does not weaken a new passphrase vault', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const env = { ...home.env, KEYWARD_TEST_FAST_KDF: '1', KEYWARD_TESTING: undefined };
  const init = await runCli(home, ['init', '--key-store', 'passphrase'], {
    input: 'correct horse battery staple\n',
    env,
    timeoutMs: 120_000,
  });
  assert.equal(init.code, 0, init.stderr);
  const params = kdfParams(home.home);
  assert.equal(params.opslimit, sodium.crypto_pwhash_OPSLIMIT_MODERATE);
  assert.equal(params.memlimit, sodium.crypto_pwhash_MEMLIMIT_MODERATE);
});

test('in a test run (KEYWARD_TESTING=1) the switch works, and the daemon warns loudly that it is active', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const init = await runCli(home, ['init', '--key-store', 'passphrase'], { input: 'pw\n' });
  assert.equal(init.code, 0, init.stderr);
  assert.equal(kdfParams(home.home).opslimit, sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE);
  const daemon = await startDaemon(home);
  t.after(() => daemon.stop());
  assert.match(
    daemon.output(),
    /"level":40[^\n]*TEST MODE: KEYWARD_TESTING=1 and KEYWARD_TEST_FAST_KDF are active/,
  );
});

test('a daemon started with a switch but without KEYWARD_TESTING says it ignores it', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const daemon = await startDaemon(home, { env: { KEYWARD_TESTING: '' } });
  t.after(() => daemon.stop());
  assert.match(
    daemon.output(),
    /ignoring KEYWARD_TEST_FAST_KDF: test-only switches count only with KEYWARD_TESTING=1/,
  );
  assert.doesNotMatch(daemon.output(), /TEST MODE/);
});

test('testOverride: only KEYWARD_TESTING=1 (exactly) turns the switches on', () => {
  assert.equal(testOverride('KEYWARD_TEST_FAST_KDF', { KEYWARD_TEST_FAST_KDF: '1' }), undefined);
  for (const testing of ['0', 'true', 'yes', '', ' 1']) {
    assert.equal(
      testOverride('KEYWARD_TEST_FAST_KDF', { KEYWARD_TESTING: testing, KEYWARD_TEST_FAST_KDF: '1' }),
      undefined,
    );
  }
  assert.equal(
    testOverride('KEYWARD_TEST_FAST_KDF', { KEYWARD_TESTING: '1', KEYWARD_TEST_FAST_KDF: '1' }),
    '1',
  );
  assert.equal(testOverride('KEYWARD_TEST_X', { KEYWARD_TESTING: '1', KEYWARD_TEST_X: '' }), undefined);
  assert.deepEqual(testOverrideReport({ KEYWARD_TEST_B: '1', KEYWARD_TEST_A: 'x', OTHER: '1' }), {
    active: [],
    ignored: ['KEYWARD_TEST_A', 'KEYWARD_TEST_B'],
  });
  assert.deepEqual(testOverrideWarnings({ PATH: '/bin' }), []);
});
