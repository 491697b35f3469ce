import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import sodium from 'sodium-native';
import { Secret } from '../daemon/secret.js';
import {
  isKeychainAvailable,
  kdfLimits,
  keyStoreWarning,
  resolveKeyStoreKind,
} from '../daemon/vault/key-stores/index.js';
import { Vault } from '../daemon/vault/vault.js';
import type { KeywardPaths } from '../shared/paths.js';
import { makeTmpHome } from './helpers/tmp-home.js';

// Argon2id at INTERACTIVE limits keeps passphrase tests fast; one test below uses the real ones.
process.env.KEYWARD_TESTING = '1';
process.env.KEYWARD_TEST_FAST_KDF = '1';

type Ctx = Parameters<typeof makeTmpHome>[0];

const SECRETS = { 'api-one': 'first-api-key-value', 'api-two': 'second-api-key-value' } as const;

/** Adds two credentials with secrets to a vault. */
function populate(vault: Vault): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    vault.insertCredential({
      name,
      kind: 'api_key',
      config: {},
      secrets: { api_key: Secret.fromString(value) },
    });
  }
}

/** Asserts every credential added by populate() reads back. */
function assertReadable(vault: Vault): void {
  for (const [name, value] of Object.entries(SECRETS)) {
    const record = vault.getCredential(name);
    assert.ok(record, name);
    assert.equal(vault.readSecret(record, 'api_key')?.reveal(), value, name);
  }
}

function sealedRows(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare('SELECT credential_id, field, hex(nonce), hex(ciphertext) FROM secrets ORDER BY 1, 2')
      .all();
  } finally {
    db.close();
  }
}

function keyRow(file: string): { key_store: string; wrapped_dek: Buffer; params: string } {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT key_store, wrapped_dek, params FROM vault_key').get() as {
      key_store: string;
      wrapped_dek: Buffer;
      params: string;
    };
  } finally {
    db.close();
  }
}

function filesContaining(dir: string, needle: Buffer): string[] {
  return fs
    .readdirSync(dir)
    .map((name) => path.join(dir, name))
    .filter((file) => fs.statSync(file).isFile() && fs.readFileSync(file).includes(needle));
}

/** Closes a vault and opens it again from disk. */
async function reopen(t: Ctx, vault: Vault, paths: KeywardPaths): Promise<Vault> {
  vault.close();
  const again = await Vault.open(paths);
  t?.after(() => again.close());
  return again;
}

async function create(t: Ctx, opts: Parameters<typeof Vault.create>[1]) {
  const tmp = makeTmpHome(t);
  const vault = await Vault.create(tmp.paths, opts);
  t?.after(() => vault.close());
  return { ...tmp, vault };
}

test('file store: a 32-byte 0600 key file; the vault reopens unlocked', async (t) => {
  const { vault, paths } = await create(t, { keyStore: 'file' });
  assert.equal(vault.keyStore, 'file');
  assert.equal(vault.locked, false);
  populate(vault);
  const key = fs.readFileSync(paths.keyFile);
  assert.equal(key.length, 32);
  if (process.platform !== 'win32') assert.equal(fs.statSync(paths.keyFile).mode & 0o777, 0o600);
  const again = await Vault.open(paths);
  t.after(() => again.close());
  assert.equal(again.keyStore, 'file');
  assertReadable(again);
  assert.match(keyStoreWarning('file', paths) ?? '', new RegExp(paths.keyFile));
  assert.equal(keyStoreWarning('passphrase', paths), null);
});

test('passphrase store: created unlocked, reopens locked, refuses a wrong passphrase without a trace', async (t) => {
  const passphrase = Secret.fromString('correct horse battery staple');
  const { vault, paths } = await create(t, { keyStore: 'passphrase', passphrase });
  assert.equal(vault.keyStore, 'passphrase');
  assert.equal(vault.locked, false, 'a new passphrase vault is returned unlocked');
  populate(vault);
  assert.ok(!fs.existsSync(paths.keyFile), 'no key file for a passphrase vault');
  vault.close();

  const locked = await Vault.open(paths);
  t.after(() => locked.close());
  assert.equal(locked.locked, true);
  // Metadata stays readable; anything needing the data key says how to unlock.
  assert.deepEqual(
    locked.listCredentials().map((c) => c.name),
    Object.keys(SECRETS),
  );
  const record = locked.getCredential('api-one');
  assert.ok(record);
  const lockedError = { code: 'VAULT_LOCKED', message: 'the vault is locked: run: keyward unlock' };
  assert.throws(() => locked.readSecret(record, 'api_key'), lockedError);
  assert.throws(() => locked.deriveKey('audit'), lockedError);
  assert.throws(
    () =>
      locked.insertCredential({
        name: 'new',
        kind: 'api_key',
        config: {},
        secrets: { api_key: Secret.fromString('x') },
      }),
    lockedError,
  );
  await assert.rejects(locked.rewrap({ keyStore: 'file' }), lockedError);
  // Even a credential without secrets needs the key now: its row's MAC does (issue 12 item 1).
  assert.throws(
    () => locked.insertCredential({ name: 'no-secret', kind: 'oauth', config: {}, secrets: {} }),
    lockedError,
  );
  assert.throws(() => locked.setSetting('policy', 'open'), lockedError);

  // vault.db and its WAL (where any write would land first), byte for byte.
  const snapshot = () =>
    [paths.vault, `${paths.vault}-wal`].map((f) => (fs.existsSync(f) ? fs.readFileSync(f) : null));
  const before = snapshot();
  await assert.rejects(locked.unlock(Secret.fromString('wrong')), {
    code: 'VAULT_LOCKED',
    message: /wrong passphrase/,
  });
  assert.equal(locked.locked, true);
  assert.deepEqual(snapshot(), before, 'a failed unlock writes nothing');

  await locked.unlock(Secret.fromString('correct horse battery staple'));
  assert.equal(locked.locked, false);
  assertReadable(locked);
  await locked.unlock(Secret.fromString('anything')); // already unlocked: a no-op
  assertReadable(locked);
});

test('rewrap file -> passphrase -> file keeps every record and removes the old key material', async (t) => {
  const { vault, paths, home } = await create(t, { keyStore: 'file' });
  populate(vault);
  const sealed = sealedRows(paths.vault);
  const oldWrapped = keyRow(paths.vault).wrapped_dek;

  assert.deepEqual(await vault.rewrap({ keyStore: 'passphrase', passphrase: Secret.fromString('pw-1') }), {
    leftover: null,
  });
  assert.equal(vault.keyStore, 'passphrase');
  assert.ok(!fs.existsSync(paths.keyFile), 'the old key file is deleted after the commit');
  assertReadable(vault);
  assert.deepEqual(sealedRows(paths.vault), sealed, 'records are untouched: only the data key is rewrapped');
  // Neither vault.db nor its WAL still holds the DEK wrapped by the deleted key.
  assert.deepEqual(filesContaining(home, oldWrapped), []);

  const locked = await reopen(t, vault, paths);
  assert.equal(locked.locked, true);
  await locked.unlock(Secret.fromString('pw-1'));
  assertReadable(locked);

  // Changing the passphrase: the old one stops working.
  await locked.rewrap({ keyStore: 'passphrase', passphrase: Secret.fromString('pw-2') });
  const changed = await reopen(t, locked, paths);
  await assert.rejects(changed.unlock(Secret.fromString('pw-1')), { code: 'VAULT_LOCKED' });
  await changed.unlock(Secret.fromString('pw-2'));

  await changed.rewrap({ keyStore: 'file' });
  assert.equal(fs.readFileSync(paths.keyFile).length, 32);
  assert.ok(!fs.existsSync(`${paths.keyFile}.new`));
  const back = await reopen(t, changed, paths);
  assert.equal(back.keyStore, 'file');
  assert.equal(back.locked, false);
  assertReadable(back);
  assert.deepEqual(sealedRows(paths.vault), sealed);
});

test('a new file vault never overwrites a key file left without its vault', async (t) => {
  const { paths, vault } = await create(t, { keyStore: 'file' });
  vault.close();
  const key = fs.readFileSync(paths.keyFile);
  // The user moves the vault away as a backup but leaves its key behind.
  fs.renameSync(paths.vault, `${paths.vault}.backup`);
  await assert.rejects(Vault.create(paths, { keyStore: 'file' }), {
    code: 'ALREADY_EXISTS',
    message: new RegExp(`${paths.keyFile} exists without a vault`),
  });
  assert.ok(fs.readFileSync(paths.keyFile).equals(key));
  assert.ok(!Vault.exists(paths), 'the failed create left no vault.db behind');
});

test('a file rewrap interrupted after its commit still opens, adopting the staged key', async (t) => {
  const { vault, paths } = await create(t, { keyStore: 'file' });
  populate(vault);
  const oldKey = fs.readFileSync(paths.keyFile);
  await vault.rewrap({ keyStore: 'file' });
  const newKey = fs.readFileSync(paths.keyFile);
  assert.ok(!newKey.equals(oldKey), 'a file -> file rewrap makes a fresh key');
  vault.close();
  // The crash: the vault row committed under the new key, but the rename never happened.
  fs.renameSync(paths.keyFile, `${paths.keyFile}.new`);
  fs.writeFileSync(paths.keyFile, oldKey, { mode: 0o600 });

  const recovered = await Vault.open(paths);
  t.after(() => recovered.close());
  assertReadable(recovered);
  assert.ok(fs.readFileSync(paths.keyFile).equals(newKey));
  assert.ok(!fs.existsSync(`${paths.keyFile}.new`));
});

test('the passphrase KDF uses Argon2id MODERATE unless KEYWARD_TEST_FAST_KDF=1 in a test run', async (t) => {
  assert.deepEqual(kdfLimits({}), {
    opslimit: sodium.crypto_pwhash_OPSLIMIT_MODERATE,
    memlimit: sodium.crypto_pwhash_MEMLIMIT_MODERATE,
  });
  // Outside a test run (no KEYWARD_TESTING=1) the switch is ignored.
  assert.deepEqual(kdfLimits({ KEYWARD_TEST_FAST_KDF: '1' }), {
    opslimit: sodium.crypto_pwhash_OPSLIMIT_MODERATE,
    memlimit: sodium.crypto_pwhash_MEMLIMIT_MODERATE,
  });
  assert.deepEqual(kdfLimits({ KEYWARD_TESTING: '1', KEYWARD_TEST_FAST_KDF: '1' }), {
    opslimit: sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE,
    memlimit: sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE,
  });

  delete process.env.KEYWARD_TEST_FAST_KDF;
  let made: Awaited<ReturnType<typeof create>>;
  try {
    made = await create(t, { keyStore: 'passphrase', passphrase: Secret.fromString('slow and steady') });
  } finally {
    process.env.KEYWARD_TEST_FAST_KDF = '1';
  }
  const params = JSON.parse(keyRow(made.paths.vault).params) as Record<string, unknown>;
  assert.equal(params.alg, 'argon2id13');
  assert.equal(params.opslimit, sodium.crypto_pwhash_OPSLIMIT_MODERATE);
  assert.equal(params.memlimit, sodium.crypto_pwhash_MEMLIMIT_MODERATE);
  assert.equal(Buffer.from(String(params.salt), 'base64').length, sodium.crypto_pwhash_SALTBYTES);

  // Unlocking uses the stored limits, whatever the environment says now.
  const locked = await reopen(t, made.vault, made.paths);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    await locked.unlock(Secret.fromString('slow and steady'));
  } finally {
    clearInterval(timer);
  }
  assert.equal(locked.locked, false);
  assert.ok(ticks > 0, 'the event loop kept turning while Argon2id ran');
});

test('auto picks the keychain only when a real round trip through it works', async () => {
  const started = Date.now();
  const available = await isKeychainAvailable();
  assert.equal(typeof available, 'boolean');
  assert.ok(Date.now() - started < 15_000, 'the probe is bounded in time');
  assert.equal(await resolveKeyStoreKind('auto'), available ? 'keychain' : 'file');
  assert.equal(await resolveKeyStoreKind('passphrase'), 'passphrase');
});

test('keychain store: create, reopen, and rewrap to the file store deletes the entry', async (t) => {
  if (!(await isKeychainAvailable())) {
    t.skip('no working OS keychain here (no Secret Service on D-Bus)');
    return;
  }
  const { vault, paths } = await create(t, { keyStore: 'keychain' });
  assert.equal(vault.keyStore, 'keychain');
  populate(vault);
  assert.ok(!fs.existsSync(paths.keyFile));
  const again = await reopen(t, vault, paths);
  assertReadable(again);
  const account = JSON.parse(keyRow(paths.vault).params).account as string;

  // keychain -> keychain uses a new entry, then deletes the old one.
  await again.rewrap({ keyStore: 'keychain' });
  const next = JSON.parse(keyRow(paths.vault).params).account as string;
  assert.notEqual(next, account);
  const { AsyncEntry } = await import('@napi-rs/keyring');
  const options = { linux: { store: 'secret-service' as const } };
  assert.equal(await new AsyncEntry('keyward', account, options).getSecret(), null);

  await again.rewrap({ keyStore: 'file' });
  assert.equal(await new AsyncEntry('keyward', next, options).getSecret(), null);
  const back = await reopen(t, again, paths);
  assertReadable(back);
});

/** Tells whether a program is on PATH. */
function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, program)));
}

const canRunSecretService =
  process.platform === 'linux' &&
  !process.env.DBUS_SESSION_BUS_ADDRESS &&
  !process.env.KEYWARD_TEST_IN_DBUS &&
  onPath('dbus-run-session') &&
  onPath('gnome-keyring-daemon');

// Headless Linux (CI, this project's machines) has no keychain, so the keychain test above would
// always skip. Where gnome-keyring is installed, run it against a real Secret Service in a private
// D-Bus session with a throwaway keyring, so the store is exercised for real.
test('keychain store against a real Secret Service (gnome-keyring in a private D-Bus session)', {
  skip: canRunSecretService
    ? false
    : 'needs dbus-run-session and gnome-keyring-daemon (Debian: gnome-keyring)',
  timeout: 60_000,
}, (t) => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-dbus-'));
  t.after(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const runtime = path.join(scratch, 'run');
  fs.mkdirSync(runtime, { mode: 0o700 });
  const self = fileURLToPath(import.meta.url);
  const script =
    'printf keyward-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 && ' +
    `exec "${process.execPath}" --test --test-name-pattern="^(keychain store:|auto picks)" "${self}"`;
  const child = spawnSync('dbus-run-session', ['--', 'sh', '-c', script], {
    // Without NODE_TEST_CONTEXT the inner runner prints plain TAP instead of talking to this one.
    env: {
      ...process.env,
      NODE_TEST_CONTEXT: undefined,
      HOME: scratch,
      XDG_RUNTIME_DIR: runtime,
      KEYWARD_TEST_IN_DBUS: '1',
    },
    encoding: 'utf8',
    timeout: 50_000,
  });
  const output = `${child.stdout}\n${child.stderr}`;
  assert.equal(child.status, 0, output);
  // The inner run must really have exercised the keychain, not skipped it.
  assert.match(output, /^ok \d+ - keychain store: create, reopen, and rewrap[^\n#]*$/m, output);
  assert.match(output, /^# pass 2$/m, output);
  assert.match(output, /^# fail 0$/m, output);
});
