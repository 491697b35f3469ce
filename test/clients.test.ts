/**
 * The client registry on a real vault.db: tokens shown once and stored only as hashes, allow
 * lists, revocation that takes effect at once, last-used times that survive a restart.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { ApiError } from '../daemon/api-error.js';
import { CLIENT_TOKEN_PREFIX, ClientRegistry } from '../daemon/clients.js';
import { Vault } from '../daemon/vault/vault.js';
import { makeTmpHome } from './helpers/tmp-home.js';

async function openRegistry(t: TestContext) {
  const tmp = makeTmpHome(t);
  const vault = await Vault.create(tmp.paths, { keyStore: 'file' });
  const registry = ClientRegistry.open(vault);
  t.after(() => {
    registry.close();
    vault.close();
  });
  return { ...tmp, vault, registry };
}

const isCode = (code: string) => (err: unknown) => err instanceof ApiError && err.code === code;

test('a client token is kwc_ + 256 random bits, and identifies its client with its allow list', async (t) => {
  const { registry } = await openRegistry(t);
  const { entry, token } = registry.add('mcp-github', ['github', 'slack', 'github']);
  const value = token.reveal();
  assert.match(value, /^kwc_[A-Za-z0-9_-]{43}$/);
  assert.ok(value.startsWith(CLIENT_TOKEN_PREFIX));
  assert.deepEqual(entry.allow, ['github', 'slack']);
  assert.equal(entry.last_used_at, null);

  const who = registry.identify(value);
  assert.equal(who?.name, 'mcp-github');
  assert.deepEqual([...(who?.allow ?? [])].sort(), ['github', 'slack']);
  // One character off, another prefix, or empty: nobody.
  assert.equal(registry.identify(`${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`), undefined);
  assert.equal(registry.identify(value.replace('kwc_', 'kwa_')), undefined);
  assert.equal(registry.identify(''), undefined);

  const other = registry.add('mcp-slack', ['slack']).token.reveal();
  assert.notEqual(other, value);
  assert.equal(registry.identify(other)?.name, 'mcp-slack');
  assert.equal(registry.identify(value)?.name, 'mcp-github');
});

test('vault.db and its WAL hold the SHA-256 of a token, never the token', async (t) => {
  const { registry, home, vault } = await openRegistry(t);
  const token = registry.add('mcp', ['a']).token.reveal();
  const hash = crypto.createHash('sha256').update(token).digest();
  const files = fs.readdirSync(home).map((f) => path.join(home, f));
  const bytes = Buffer.concat(files.filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f)));
  assert.equal(bytes.includes(Buffer.from(token)), false, 'the token is on disk in clear');
  assert.equal(bytes.includes(Buffer.from(token.slice(4))), false, 'the token body is on disk in clear');
  assert.equal(bytes.includes(hash), true, 'the hash is what identifies the client');
  assert.ok(vault.path.endsWith('vault.db'));
});

test('remove revokes at once; an unknown client is NOT_FOUND and a taken name ALREADY_EXISTS', async (t) => {
  const { registry } = await openRegistry(t);
  const token = registry.add('mcp', ['a']).token.reveal();
  assert.throws(() => registry.add('mcp', ['b']), isCode('ALREADY_EXISTS'));
  registry.remove('mcp');
  assert.equal(registry.identify(token), undefined);
  assert.deepEqual(registry.list(), []);
  assert.throws(() => registry.remove('mcp'), isCode('NOT_FOUND'));
  // The name is free again, with a new token; the old one stays dead.
  const again = registry.add('mcp', ['a']).token.reveal();
  assert.notEqual(again, token);
  assert.equal(registry.identify(token), undefined);
  assert.equal(registry.identify(again)?.name, 'mcp');
});

test('names are checked: bad client or credential names are INVALID_REQUEST', async (t) => {
  const { registry } = await openRegistry(t);
  assert.throws(() => registry.add('Bad Name', ['a']), isCode('INVALID_REQUEST'));
  assert.throws(() => registry.add('ok', ['../etc']), isCode('INVALID_REQUEST'));
  assert.deepEqual(registry.list(), []);
});

test('clients, allow lists and last-used times survive a restart; revoked ones do not come back', async (t) => {
  const tmp = makeTmpHome(t);
  const vault = await Vault.create(tmp.paths, { keyStore: 'file' });
  t.after(() => vault.close());
  const first = ClientRegistry.open(vault);
  const kept = first.add('kept', ['a', 'b']).token.reveal();
  const gone = first.add('gone', ['a']).token.reveal();
  const before = Date.now();
  assert.equal(first.identify(kept)?.name, 'kept');
  first.remove('gone');
  first.close();

  const second = ClientRegistry.open(vault);
  t.after(() => second.close());
  const list = second.list();
  assert.deepEqual(
    list.map((c) => [c.name, c.allow]),
    [['kept', ['a', 'b']]],
  );
  const lastUsed = Date.parse(list[0]?.last_used_at ?? '');
  assert.ok(lastUsed >= before - 1000 && lastUsed <= Date.now(), `last_used_at ${list[0]?.last_used_at}`);
  assert.equal(second.identify(kept)?.name, 'kept');
  assert.equal(second.identify(gone), undefined);
});
