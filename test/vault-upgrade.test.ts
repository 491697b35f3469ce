/**
 * Upgrading a vault written by keyward before its clear columns were authenticated (schema 2):
 * the file is made here the way that keyward made it (its schema SQL, its key record, secrets
 * sealed under the v1 associated data). The first open with the data key seals every row once,
 * every credential and client keeps working, and a vault stripped of its MACs afterwards is not
 * sealed again: its rows are VAULT_CORRUPT.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import sodium from 'sodium-native';
import { Secret } from '../daemon/secret.js';
import { deriveKek, kdfLimits } from '../daemon/vault/key-stores/passphrase.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const GITHUB_KEY = 'ghp-old-vault-key-1a2b';
const WEATHER_KEY = 'weather-old-vault-key-3c4d';
const PASSPHRASE = 'old vault passphrase';
const SEALED_MESSAGE = /sealed the rows of a vault from an older keyward/;

/** Schema 1 and 2 exactly as keyward's migrations 1 and 2 wrote them. */
const SCHEMA_V2 = `
  CREATE TABLE vault_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_store TEXT NOT NULL CHECK (key_store IN ('file', 'keychain', 'passphrase')),
    wrapped_dek BLOB NOT NULL,
    nonce BLOB NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE TABLE credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('api_key', 'oauth')),
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE TABLE secrets (
    credential_id INTEGER NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (credential_id, field)
  ) STRICT;
  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    token_hash BLOB NOT NULL UNIQUE,
    allow TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    last_used_at TEXT
  ) STRICT;
`;

function sealV1(key: Buffer, plaintext: Buffer, ad: string): { nonce: Buffer; ciphertext: Buffer } {
  const nonce = crypto.randomBytes(24);
  const ciphertext = Buffer.alloc(plaintext.length + 16);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(ciphertext, plaintext, Buffer.from(ad), null, nonce, key);
  return { nonce, ciphertext };
}

/**
 * Writes a schema-2 vault with github and weather API keys, a client allowed weather and the
 * strict policy; returns the client's token.
 */
async function writeSchemaV2Vault(home: TestHome, keyStore: 'file' | 'passphrase'): Promise<string> {
  fs.mkdirSync(home.home, { recursive: true, mode: 0o700 });
  const vaultFile = path.join(home.home, 'vault.db');
  const dek = crypto.randomBytes(32);
  let kek: Buffer;
  let params: Record<string, unknown> = {};
  if (keyStore === 'file') {
    kek = crypto.randomBytes(32);
    fs.writeFileSync(path.join(home.home, 'vault.key'), kek, { mode: 0o600 });
  } else {
    params = {
      alg: 'argon2id13',
      salt: crypto.randomBytes(16).toString('base64'),
      ...kdfLimits({ KEYWARD_TEST_FAST_KDF: '1' }),
    };
    kek = Buffer.from(await deriveKek(Secret.fromString(PASSPHRASE), params as never));
  }
  const now = new Date().toISOString();
  const db = new Database(vaultFile);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA_V2);
    db.pragma('user_version = 2');
    const wrapped = sealV1(kek, dek, 'keyward/v1/dek');
    db.prepare('INSERT INTO vault_key VALUES (1, ?, ?, ?, ?, ?, ?)').run(
      keyStore,
      wrapped.ciphertext,
      wrapped.nonce,
      JSON.stringify(params),
      now,
      now,
    );
    for (const [name, key] of [
      ['github', GITHUB_KEY],
      ['weather', WEATHER_KEY],
    ] as const) {
      const id = Number(
        db
          .prepare(
            `INSERT INTO credentials (name, kind, config, state, created_at, updated_at)
             VALUES (?, 'api_key', '{"token_type":"Bearer"}', '{}', ?, ?)`,
          )
          .run(name, now, now).lastInsertRowid,
      );
      const sealed = sealV1(dek, Buffer.from(key), `keyward/v1/secret/${id}/api_key`);
      db.prepare('INSERT INTO secrets VALUES (?, ?, ?, ?)').run(
        id,
        'api_key',
        sealed.nonce,
        sealed.ciphertext,
      );
    }
    const token = `kwc_${crypto.randomBytes(32).toString('base64url')}`;
    db.prepare(
      `INSERT INTO clients (name, token_hash, allow, created_at) VALUES ('weather-mcp', ?, '["weather"]', ?)`,
    ).run(crypto.createHash('sha256').update(token).digest(), now);
    db.prepare("INSERT INTO kv (key, value) VALUES ('policy', 'strict')").run();
    return token;
  } finally {
    db.close();
    fs.chmodSync(vaultFile, 0o600);
  }
}

function tokenRequest(home: TestHome, name: string, clientToken?: string) {
  return socketRequest(home.socket, 'POST', `/v1/credentials/${name}/token`, {
    body: {},
    ...(clientToken ? { headers: { authorization: `Bearer ${clientToken}` } } : {}),
  });
}

/** Checks that the upgraded vault serves what it held, under its policy and allow list. */
async function assertWorks(home: TestHome, client: string): Promise<void> {
  const weather = await tokenRequest(home, 'weather', client);
  assert.equal(weather.status, 200, weather.text);
  assert.equal(weather.body.access_token, WEATHER_KEY);
  assert.equal((await tokenRequest(home, 'github', client)).body.error.code, 'FORBIDDEN');
  assert.equal((await tokenRequest(home, 'github')).status, 401, 'the strict policy survives the upgrade');
  assert.equal((await runCli(home, ['token', 'github'])).stdout, `${GITHUB_KEY}\n`);
}

function startHome(t: TestContext): { home: TestHome; current: { daemon?: DaemonProcess } } {
  const home = makeHome();
  const current: { daemon?: DaemonProcess } = {};
  t.after(async () => {
    await current.daemon?.stop();
    home.cleanup();
  });
  return { home, current };
}

test('a schema-2 vault (file key) is sealed once at its first open and keeps every credential and client', async (t) => {
  const { home, current } = startHome(t);
  const client = await writeSchemaV2Vault(home, 'file');
  current.daemon = await startDaemon(home);
  await assertWorks(home, client);
  assert.match(current.daemon.output(), SEALED_MESSAGE);
  assert.equal(await current.daemon.stop(), 0);

  const db = new Database(path.join(home.home, 'vault.db'));
  try {
    assert.equal(db.pragma('user_version', { simple: true }), 3);
    for (const table of ['credentials', 'clients', 'kv']) {
      const unsealed = db.prepare(`SELECT count(*) AS n FROM ${table} WHERE mac IS NULL`).get() as {
        n: number;
      };
      assert.equal(unsealed.n, 0, `${table} has unsealed rows`);
    }
  } finally {
    db.close();
  }
  current.daemon = await startDaemon(home);
  await assertWorks(home, client);
  assert.doesNotMatch(current.daemon.output(), SEALED_MESSAGE, 'a sealed vault is sealed once');
  assert.equal(await current.daemon.stop(), 0);

  // An attacker strips the MACs and the manifest so that the next open would seal their edits.
  const strip = new Database(path.join(home.home, 'vault.db'));
  try {
    strip.exec(`
      DELETE FROM integrity;
      UPDATE credentials SET mac = NULL, version = 0;
      UPDATE clients SET mac = NULL, version = 0, allow = '["github","weather"]';
      UPDATE kv SET mac = NULL, version = 0, value = 'open' WHERE key = 'policy';
    `);
  } finally {
    strip.close();
  }
  current.daemon = await startDaemon(home);
  assert.doesNotMatch(current.daemon.output(), SEALED_MESSAGE);
  const widened = await tokenRequest(home, 'github', client);
  assert.equal(widened.body?.error?.code, 'VAULT_CORRUPT', widened.text);
  assert.ok(!widened.text.includes(GITHUB_KEY));
  assert.equal((await tokenRequest(home, 'github')).status, 401, 'the policy stays strict');
  const cli = await runCli(home, ['token', 'github']);
  assert.match(cli.stderr, /^keyward: VAULT_CORRUPT: /m);
});

test('a schema-2 passphrase vault is migrated locked and sealed at unlock; locked, clients get VAULT_LOCKED', async (t) => {
  const { home, current } = startHome(t);
  const client = await writeSchemaV2Vault(home, 'passphrase');
  current.daemon = await startDaemon(home);
  const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
  assert.equal(status.vault.locked, true);
  assert.deepEqual(
    status.credentials.map((c: { name: string }) => c.name),
    ['github', 'weather'],
  );
  const locked = await tokenRequest(home, 'weather', client);
  assert.equal(locked.body?.error?.code, 'VAULT_LOCKED', locked.text);
  assert.equal(
    (await tokenRequest(home, 'weather')).status,
    401,
    'strict while the policy cannot be checked',
  );
  assert.doesNotMatch(current.daemon.output(), SEALED_MESSAGE);

  const unlocked = await runCli(home, ['unlock'], { input: `${PASSPHRASE}\n` });
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.match(current.daemon.output(), SEALED_MESSAGE);
  await assertWorks(home, client);
  assert.equal(await current.daemon.stop(), 0);

  current.daemon = await startDaemon(home);
  assert.equal((await runCli(home, ['unlock'], { input: `${PASSPHRASE}\n` })).code, 0);
  await assertWorks(home, client);
  assert.doesNotMatch(current.daemon.output(), SEALED_MESSAGE, 'a sealed vault is sealed once');
});

test('attack: a sealed vault stripped of its MACs and its secrets is not sealed again with the edits in it', async (t) => {
  const { home, current } = startHome(t);
  const client = await writeSchemaV2Vault(home, 'file');
  current.daemon = await startDaemon(home);
  await assertWorks(home, client);
  assert.equal(await current.daemon.stop(), 0);

  // The attacker sets the secrets aside (so that none opens as sealed-by-v2 evidence), strips every
  // MAC and the manifest, and widens the client's allow list and the policy.
  const vaultFile = path.join(home.home, 'vault.db');
  const edit = new Database(vaultFile);
  let kept: unknown[];
  try {
    kept = edit.prepare('SELECT * FROM secrets').all();
    edit.exec(`
      DELETE FROM secrets;
      DELETE FROM integrity;
      UPDATE credentials SET mac = NULL, version = 0;
      UPDATE clients SET mac = NULL, version = 0, allow = '["github","weather"]';
      UPDATE kv SET mac = NULL, version = 0, value = 'open' WHERE key = 'policy';
    `);
  } finally {
    edit.close();
  }
  current.daemon = await startDaemon(home);
  assert.doesNotMatch(current.daemon.output(), SEALED_MESSAGE, 'a stripped vault must not be sealed again');
  assert.equal(await current.daemon.stop(), 0);

  // Then puts the secrets back, hoping the edits now carry valid MACs.
  const restore = new Database(vaultFile);
  try {
    const insert = restore.prepare(
      'INSERT INTO secrets (credential_id, field, nonce, ciphertext) VALUES (@credential_id, @field, @nonce, @ciphertext)',
    );
    for (const row of kept) insert.run(row);
  } finally {
    restore.close();
  }
  current.daemon = await startDaemon(home);
  const widened = await tokenRequest(home, 'github', client);
  assert.equal(widened.body?.error?.code, 'VAULT_CORRUPT', widened.text);
  assert.ok(!widened.text.includes(GITHUB_KEY));
  assert.equal((await tokenRequest(home, 'github')).status, 401, 'the policy stays strict');
});
