import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { FsSafetyError } from '../daemon/fs-safety.js';
import { Secret } from '../daemon/secret.js';
import { AUTHENTICATED_COLUMNS, UNAUTHENTICATED_COLUMNS } from '../daemon/vault/integrity.js';
import { isKeychainAvailable } from '../daemon/vault/key-stores/index.js';
import { Vault } from '../daemon/vault/vault.js';
import { makeTmpHome } from './helpers/tmp-home.js';

// Argon2id at INTERACTIVE limits keeps passphrase tests fast (see key-stores/passphrase.ts).
process.env.KEYWARD_TESTING = '1';
process.env.KEYWARD_TEST_FAST_KDF = '1';

const posix = process.platform !== 'win32';

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

/** Every regular file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((entry) => {
    const full = path.join(entry.parentPath, entry.name);
    return entry.isFile() ? [full] : [];
  });
}

/** Files under `dir` whose raw bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  return filesUnder(dir).filter((file) => fs.readFileSync(file).includes(bytes));
}

/** Opens a second, independent connection to vault.db, as an attacker or a disk fault would. */
function rawDb(file: string): Database.Database {
  return new Database(file);
}

async function newFileVault(t: Parameters<typeof makeTmpHome>[0]) {
  const tmp = makeTmpHome(t);
  const vault = await Vault.create(tmp.paths, { keyStore: 'file' });
  t?.after(() => vault.close());
  return { ...tmp, vault };
}

test('a secret round-trips, and update commits state and secrets together', async (t) => {
  const { vault } = await newFileVault(t);
  const record = vault.insertCredential({
    name: 'github',
    kind: 'oauth',
    config: { issuer: 'https://github.com', scope: 'repo' },
    state: { state: 'needs_login' },
    secrets: { client_secret: Secret.fromString('cs-1') },
  });
  assert.equal(record.name, 'github');
  assert.deepEqual(record.config, { issuer: 'https://github.com', scope: 'repo' });
  assert.equal(vault.readSecret(record, 'client_secret')?.reveal(), 'cs-1');
  assert.equal(vault.readSecret(record, 'refresh_token'), undefined);

  const updated = vault.updateCredential('github', {
    state: { state: 'ready', expires_at: '2030-01-01T00:00:00.000Z' },
    secrets: { access_token: Secret.fromString('at-1'), refresh_token: Secret.fromString('rt-1') },
  });
  // Shallow merge: untouched config and state keys survive.
  assert.deepEqual(updated.config, record.config);
  assert.deepEqual(updated.state, { state: 'ready', expires_at: '2030-01-01T00:00:00.000Z' });
  assert.equal(vault.readSecret(updated, 'access_token')?.reveal(), 'at-1');
  assert.equal(vault.readSecret(updated, 'refresh_token')?.reveal(), 'rt-1');

  // A null secret deletes the field; the others stay.
  vault.updateCredential('github', {
    secrets: { refresh_token: null, access_token: Secret.fromString('at-2') },
  });
  assert.equal(vault.readSecret(updated, 'refresh_token'), undefined);
  assert.equal(vault.readSecret(updated, 'access_token')?.reveal(), 'at-2');
  assert.equal(vault.getCredential('github')?.id, record.id);
});

test('a failed update rolls back every part of it', async (t) => {
  const { vault, paths } = await newFileVault(t);
  const record = vault.insertCredential({
    name: 'slack',
    kind: 'oauth',
    config: {},
    state: { expires_at: 'old' },
    secrets: { refresh_token: Secret.fromString('rt-old') },
  });
  // A field name the vault refuses makes the whole update fail before anything commits.
  assert.throws(() =>
    vault.updateCredential('slack', {
      state: { expires_at: 'new' },
      secrets: { refresh_token: Secret.fromString('rt-new'), 'bad/field': Secret.fromString('x') },
    }),
  );
  // A failure while resealing a secret, after the state row was already updated, rolls back both.
  const db = rawDb(paths.vault);
  db.exec('CREATE TRIGGER fail_secret BEFORE UPDATE ON secrets BEGIN SELECT RAISE(ABORT, "boom"); END');
  db.close();
  assert.throws(
    () =>
      vault.updateCredential('slack', {
        state: { expires_at: 'new' },
        secrets: { refresh_token: Secret.fromString('rt-new') },
      }),
    /boom/,
  );
  assert.deepEqual(vault.getCredential('slack')?.state, { expires_at: 'old' });
  assert.equal(vault.readSecret(record, 'refresh_token')?.reveal(), 'rt-old');
});

test('names are unique, validated, and ids are never reused', async (t) => {
  const { vault } = await newFileVault(t);
  const first = vault.insertCredential({ name: 'a', kind: 'api_key', config: {}, secrets: {} });
  assert.throws(() => vault.insertCredential({ name: 'a', kind: 'api_key', config: {}, secrets: {} }), {
    code: 'ALREADY_EXISTS',
    message: /"a"/,
  });
  assert.throws(
    () => vault.insertCredential({ name: 'Bad Name', kind: 'api_key', config: {}, secrets: {} }),
    {
      code: 'INVALID_REQUEST',
    },
  );
  assert.throws(() => vault.updateCredential('missing', { state: {} }), { code: 'NOT_FOUND' });
  assert.equal(vault.removeCredential('a'), true);
  assert.equal(vault.removeCredential('a'), false);
  const second = vault.insertCredential({ name: 'a', kind: 'api_key', config: {}, secrets: {} });
  assert.ok(second.id > first.id, 'AUTOINCREMENT never hands out a removed id again');
  // A stale record of the removed credential reads nothing of the new one.
  assert.equal(vault.readSecret(first, 'api_key'), undefined);
});

test('a flipped ciphertext or nonce byte is VAULT_CORRUPT for that credential alone', async (t) => {
  const { vault, paths } = await newFileVault(t);
  const victim = vault.insertCredential({
    name: 'victim',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('victim-secret-value') },
  });
  const bystander = vault.insertCredential({
    name: 'bystander',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('bystander-secret-value') },
  });
  const db = rawDb(paths.vault);
  const row = db.prepare('SELECT nonce, ciphertext FROM secrets WHERE credential_id = ?').get(victim.id) as {
    nonce: Buffer;
    ciphertext: Buffer;
  };
  for (const column of ['ciphertext', 'nonce'] as const) {
    const damaged = Buffer.from(row[column]);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 0x01;
    db.prepare(`UPDATE secrets SET ${column} = ? WHERE credential_id = ?`).run(damaged, victim.id);
    let caught: unknown;
    try {
      vault.readSecret(victim, 'api_key');
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof Error);
    assert.equal((caught as { code?: string }).code, 'VAULT_CORRUPT');
    assert.match(caught.message, /"victim"/);
    assert.match(caught.message, /keyward remove victim/);
    assert.ok(!caught.message.includes('victim-secret-value'));
    db.prepare(`UPDATE secrets SET ${column} = ? WHERE credential_id = ?`).run(row[column], victim.id);
  }
  db.close();
  assert.equal(vault.readSecret(bystander, 'api_key')?.reveal(), 'bystander-secret-value');
  assert.equal(vault.readSecret(victim, 'api_key')?.reveal(), 'victim-secret-value');
});

test('a sealed value moved onto another credential or field never opens there', async (t) => {
  const { vault, paths } = await newFileVault(t);
  const mallory = vault.insertCredential({
    name: 'mallory',
    kind: 'oauth',
    config: {},
    secrets: {
      refresh_token: Secret.fromString('mallory-rt'),
      access_token: Secret.fromString('mallory-at'),
    },
  });
  const alice = vault.insertCredential({
    name: 'alice',
    kind: 'oauth',
    config: {},
    secrets: { refresh_token: Secret.fromString('alice-rt') },
  });
  const bob = vault.insertCredential({
    name: 'bob',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('bob-key') },
  });
  const db = rawDb(paths.vault);
  // Alice's sealed refresh token copied over Mallory's, and into Mallory's access_token field.
  db.prepare(
    `UPDATE secrets SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM secrets
       WHERE credential_id = ? AND field = 'refresh_token') WHERE credential_id = ?`,
  ).run(alice.id, mallory.id);
  // Alice's refresh token also copied into her own access_token field.
  db.prepare(
    `INSERT INTO secrets (credential_id, field, nonce, ciphertext)
     SELECT credential_id, 'access_token', nonce, ciphertext FROM secrets WHERE credential_id = ? AND field = 'refresh_token'`,
  ).run(alice.id);
  db.close();
  for (const field of ['refresh_token', 'access_token']) {
    assert.throws(() => vault.readSecret(mallory, field), { code: 'VAULT_CORRUPT', message: /"mallory"/ });
  }
  assert.throws(() => vault.readSecret(alice, 'access_token'), { code: 'VAULT_CORRUPT', message: /"alice"/ });
  // The originals still open in their own place.
  assert.equal(vault.readSecret(alice, 'refresh_token')?.reveal(), 'alice-rt');
  assert.equal(vault.readSecret(bob, 'api_key')?.reveal(), 'bob-key');
});

test('home is 0700 and vault.db, vault.key, -wal and -shm are 0600 even under umask 000', {
  skip: !posix,
}, async (t) => {
  const tmp = makeTmpHome(t);
  const home = path.join(tmp.home, 'nested', 'keyward');
  const paths = {
    ...tmp.paths,
    home,
    vault: path.join(home, 'vault.db'),
    keyFile: path.join(home, 'vault.key'),
  };
  const old = process.umask(0o000);
  let vault: Vault;
  try {
    vault = await Vault.create(paths, { keyStore: 'file' });
    vault.insertCredential({
      name: 'x',
      kind: 'api_key',
      config: {},
      secrets: { api_key: Secret.fromString('v') },
    });
  } finally {
    process.umask(old);
  }
  t.after(() => vault.close());
  assert.equal(mode(path.join(tmp.home, 'nested')), 0o700);
  assert.equal(mode(home), 0o700);
  for (const file of [paths.vault, paths.keyFile, `${paths.vault}-wal`, `${paths.vault}-shm`]) {
    assert.ok(fs.existsSync(file), `${file} exists`);
    assert.equal(mode(file), 0o600, file);
  }
});

test('open refuses an open home, a group-readable key file and a symlinked vault, naming the path', {
  skip: !posix,
}, async (t) => {
  const { paths, vault } = await newFileVault(t);
  vault.close();

  fs.chmodSync(paths.home, 0o755);
  await assert.rejects(Vault.open(paths), (error: unknown) => {
    assert.ok(error instanceof FsSafetyError);
    assert.equal(error.reason, 'too-open');
    assert.match(error.message, new RegExp(`chmod 700 ${paths.home}`));
    return true;
  });
  fs.chmodSync(paths.home, 0o700);

  fs.chmodSync(paths.keyFile, 0o640);
  await assert.rejects(Vault.open(paths), (error: unknown) => {
    assert.ok(error instanceof FsSafetyError);
    assert.equal(error.path, paths.keyFile);
    assert.match(error.message, new RegExp(`chmod 600 ${paths.keyFile}`));
    return true;
  });
  fs.chmodSync(paths.keyFile, 0o600);

  const real = `${paths.vault}.real`;
  fs.renameSync(paths.vault, real);
  fs.symlinkSync(real, paths.vault);
  await assert.rejects(Vault.open(paths), { name: 'FsSafetyError', reason: 'symlink', path: paths.vault });
  fs.rmSync(paths.vault);
  fs.renameSync(real, paths.vault);

  const reopened = await Vault.open(paths);
  reopened.close();
});

test('no secret byte reaches any file under the home in clear', async (t) => {
  const { vault, home } = await newFileVault(t);
  const canaries = ['kw-canary-api-key-5f1d2e', 'kw-canary-refresh-9a8b7c', 'kw-canary-access-3c4d5e'];
  const [apiKey, refresh, access] = canaries as [string, string, string];
  vault.insertCredential({
    name: 'one',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString(apiKey) },
  });
  vault.insertCredential({
    name: 'two',
    kind: 'oauth',
    config: { issuer: 'https://issuer.example' },
    secrets: { refresh_token: Secret.fromString(refresh) },
  });
  vault.updateCredential('two', { secrets: { access_token: Secret.fromString(access) } });
  // A secret passed into clear config by mistake serializes as [REDACTED], not as its value.
  vault.updateCredential('two', { config: { oops: Secret.fromString(refresh) } });
  assert.equal(vault.getCredential('two')?.config.oops, '[REDACTED]');
  vault.removeCredential('one');
  vault.setSetting('policy', 'strict');

  // While open (the WAL holds the recent pages) and after close (checkpointed into vault.db).
  const wal = `${vault.path}-wal`;
  assert.ok(fs.statSync(wal).size > 0, 'the WAL is in use, so the scan covers it');
  for (const canary of canaries) assert.deepEqual(filesContaining(home, canary), [], canary);
  vault.close();
  for (const canary of canaries) assert.deepEqual(filesContaining(home, canary), [], canary);
  // Clear metadata is, by design, in clear: the scan itself can see through the files.
  assert.ok(filesContaining(home, 'https://issuer.example').length > 0);
});

test('readMetadata lists credentials without a key and leaves every file as it was', async (t) => {
  const { vault, paths, home } = await newFileVault(t);
  vault.insertCredential({
    name: 'github',
    kind: 'oauth',
    config: { issuer: 'https://github.com' },
    state: { state: 'ready' },
    secrets: { refresh_token: Secret.fromString('rt') },
  });
  vault.insertCredential({ name: 'apikey', kind: 'api_key', config: {}, secrets: {} });

  const snapshot = () =>
    filesUnder(home)
      .sort()
      .map((file) => ({
        file,
        mtime: fs.statSync(file).mtimeMs,
        bytes: fs.readFileSync(file).toString('hex'),
      }));

  // With the daemon running: the WAL holds the commits.
  const live = snapshot();
  const metaLive = Vault.readMetadata(paths);
  assert.deepEqual(
    metaLive.credentials.map((c) => c.name),
    ['apikey', 'github'],
  );
  assert.deepEqual(
    snapshot().map((s) => s.file),
    live.map((s) => s.file),
  );

  // With the daemon down and the key gone: nothing is created or modified.
  vault.close();
  fs.renameSync(paths.keyFile, `${paths.keyFile}.away`);
  const before = snapshot();
  const meta = Vault.readMetadata(paths);
  assert.equal(meta.keyStore, 'file');
  assert.deepEqual(meta.credentials.find((c) => c.name === 'github')?.config, {
    issuer: 'https://github.com',
  });
  assert.deepEqual(meta.credentials.find((c) => c.name === 'github')?.state, { state: 'ready' });
  assert.deepEqual(snapshot(), before);
  assert.throws(() => Vault.readMetadata({ ...paths, vault: path.join(home, 'none.db') }), {
    code: 'NOT_FOUND',
  });
});

test('synchronous=FULL, WAL, secure_delete and foreign keys are in force after a reopen', async (t) => {
  const { vault, paths } = await newFileVault(t);
  vault.close();
  const reopened = await Vault.open(paths);
  t.after(() => reopened.close());
  assert.deepEqual(reopened.sqliteSettings(), {
    journalMode: 'wal',
    synchronous: 2,
    secureDelete: 1,
    foreignKeys: 1,
  });
  // A plain connection shows what the vault guards against: this SQLite build defaults WAL to NORMAL.
  const db = rawDb(paths.vault);
  assert.equal(db.pragma('synchronous', { simple: true }), 1);
  db.close();
});

test('removing a credential removes its secrets (foreign keys cascade)', async (t) => {
  const { vault, paths } = await newFileVault(t);
  vault.insertCredential({
    name: 'gone',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('x') },
  });
  assert.equal(vault.removeCredential('gone'), true);
  const db = rawDb(paths.vault);
  assert.equal((db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n, 0);
  db.close();
});

test('deriveKey gives a stable 32-byte subkey per purpose; settings persist', async (t) => {
  const { vault, paths } = await newFileVault(t);
  const audit = vault.deriveKey('audit-log-mac');
  assert.equal(audit.length, 32);
  assert.ok(!audit.equals(vault.deriveKey('something-else')));
  vault.setSetting('policy', 'open');
  vault.setSetting('policy', 'strict');
  vault.close();
  assert.throws(() => vault.deriveKey('audit-log-mac'), { code: 'INTERNAL' });
  const reopened = await Vault.open(paths);
  t.after(() => reopened.close());
  assert.ok(reopened.deriveKey('audit-log-mac').equals(audit));
  assert.equal(reopened.getSetting('policy'), 'strict');
  assert.equal(reopened.getSetting('nothing'), undefined);
});

test('create refuses an existing vault and leaves nothing behind when it fails', async (t) => {
  const { paths, vault } = await newFileVault(t);
  await assert.rejects(Vault.create(paths, { keyStore: 'file' }), { code: 'ALREADY_EXISTS' });
  vault.close();

  const other = makeTmpHome(t);
  await assert.rejects(Vault.create(other.paths, { keyStore: 'passphrase' }), { code: 'INVALID_REQUEST' });
  if (!(await isKeychainAvailable())) {
    // The keychain store fails after vault.db was claimed: init must be re-runnable.
    await assert.rejects(Vault.create(other.paths, { keyStore: 'keychain' }));
  }
  assert.deepEqual(fs.readdirSync(other.home), []);
  const created = await Vault.create(other.paths, { keyStore: 'file' });
  created.close();
});

test('open explains an empty vault file and a vault whose key is missing or foreign', async (t) => {
  const { paths, vault } = await newFileVault(t);
  vault.close();
  const key = fs.readFileSync(paths.keyFile);

  fs.writeFileSync(paths.keyFile, Buffer.alloc(32, 7));
  await assert.rejects(Vault.open(paths), { code: 'VAULT_CORRUPT', message: new RegExp(paths.keyFile) });
  fs.rmSync(paths.keyFile);
  await assert.rejects(Vault.open(paths), { code: 'VAULT_CORRUPT', message: /missing/ });
  fs.writeFileSync(paths.keyFile, key, { mode: 0o600 });

  const empty = makeTmpHome(t);
  fs.writeFileSync(empty.paths.vault, '', { mode: 0o600 });
  await assert.rejects(Vault.open(empty.paths), { code: 'VAULT_CORRUPT', message: /keyward init/ });
  assert.equal(
    fs.statSync(empty.paths.vault).size,
    0,
    'the empty file was not migrated into a keyless vault',
  );

  const reopened = await Vault.open(paths);
  reopened.close();
});

test('every column of a sealed table is MACd or listed as left out on purpose', async (t) => {
  const { vault } = await newFileVault(t);
  const db = rawDb(vault.path);
  t.after(() => db.close());
  for (const table of ['credentials', 'clients', 'kv'] as const) {
    const columns = (
      db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as Array<{ name: string }>
    )
      .map((c) => c.name)
      .sort();
    const listed = [...AUTHENTICATED_COLUMNS[table], ...UNAUTHENTICATED_COLUMNS[table]].sort();
    assert.deepEqual(columns, listed, `a new column of ${table} must be authenticated or said not to be`);
  }
});

test('a row edited through a second connection while the vault is open is refused, not resealed', async (t) => {
  const { vault } = await newFileVault(t);
  vault.insertCredential({
    name: 'svc',
    kind: 'oauth',
    config: { token_endpoint: 'https://as.example/token' },
    secrets: { refresh_token: Secret.fromString('rt') },
  });
  const db = rawDb(vault.path);
  t.after(() => db.close());
  db.prepare(`UPDATE credentials SET config = '{"token_endpoint":"https://evil.example/token"}'`).run();
  // A write through the vault re-reads the row: merging into it would seal the edit.
  assert.throws(() => vault.updateCredential('svc', { state: { state: 'ready' } }), {
    code: 'VAULT_CORRUPT',
  });
  assert.throws(() => vault.readSecret(vault.getCredential('svc') as never, 'refresh_token'), {
    code: 'VAULT_CORRUPT',
  });
  assert.equal(vault.removeCredential('svc'), true, 'a damaged credential can still be removed');
});

test('an edited manifest (a row version turned back) makes the rows it covers fail, not pass', async (t) => {
  const { vault, paths } = await newFileVault(t);
  vault.insertCredential({
    name: 'a',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('k') },
  });
  vault.updateCredential('a', { state: { note: 'v2' } });
  vault.close();
  const db = rawDb(paths.vault);
  const row = db.prepare('SELECT versions FROM integrity').get() as { versions: string };
  db.prepare('UPDATE integrity SET versions = ?').run(row.versions.replace(/:2\}/, ':1}'));
  db.close();
  const reopened = await Vault.open(paths);
  t.after(() => reopened.close());
  assert.throws(() => reopened.getCredential('a'), { code: 'VAULT_CORRUPT', message: /integrity manifest/ });
});
