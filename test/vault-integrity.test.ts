/**
 * Authenticated clear columns (issue 12 item 1, contract "Security (v2)"): attacks by someone who
 * can write vault.db, run against the real daemon and CLI. Each stops the daemon, edits the vault
 * file offline with better-sqlite3 as an attacker would, starts the daemon again and checks that
 * the edited credential or client fails closed as VAULT_CORRUPT, that no request reaches an
 * endpoint read from an edited row, and that the other credentials keep working.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { addOAuthCredential } from './helpers/oauth-cli.js';

const GITHUB_KEY = 'ghp-secret-of-github-7f3a';
const WEATHER_KEY = 'weather-key-2b9c';
const OTHER_KEY = 'other-key-5d1e';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A home, the daemon now serving it, and the token of a client allowed only `weather`. */
interface Setup {
  home: TestHome;
  daemon: DaemonProcess;
  weatherClient: string;
}

/** A daemon on a fresh home with three API keys and a client allowed only `weather`. */
async function setUp(t: TestContext): Promise<Setup> {
  const home = makeHome();
  const setup: Setup = { home, daemon: await startDaemon(home), weatherClient: '' };
  t.after(async () => {
    await setup.daemon.stop();
    home.cleanup();
  });
  for (const [name, key] of [
    ['github', GITHUB_KEY],
    ['weather', WEATHER_KEY],
    ['other', OTHER_KEY],
  ] as const) {
    const added = await runCli(home, ['add', name, '--api-key'], { input: key });
    assert.equal(added.code, 0, added.stderr);
  }
  const client = await runCli(home, ['client', 'add', 'weather-mcp', '--allow', 'weather']);
  assert.equal(client.code, 0, client.stderr);
  setup.weatherClient = client.stdout.trim();
  return setup;
}

/** Stops the daemon, edits vault.db as an attacker with write access would, and starts it again. */
async function editOffline(setup: Setup, edit: (db: Database.Database) => void): Promise<void> {
  assert.equal(await setup.daemon.stop(), 0, setup.daemon.output());
  const db = new Database(path.join(setup.home.home, 'vault.db'));
  try {
    edit(db);
  } finally {
    db.close();
  }
  setup.daemon = await startDaemon(setup.home);
}

/** Every column of a row but its id: what an attacker copies to put an older row back. */
function snapshotRow(
  db: Database.Database,
  table: string,
  where: string,
  value: string,
): Record<string, unknown> {
  const row = db.prepare(`SELECT * FROM ${table} WHERE ${where} = ?`).get(value) as Record<string, unknown>;
  assert.ok(row, `no ${table} row ${value}`);
  const { id: _id, ...rest } = row;
  return rest;
}

function restoreRow(
  db: Database.Database,
  table: string,
  where: string,
  value: string,
  row: Record<string, unknown>,
): void {
  const columns = Object.keys(row);
  const changes = db
    .prepare(`UPDATE ${table} SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE ${where} = @__where`)
    .run({ ...row, __where: value }).changes;
  assert.equal(changes, 1);
}

/** Asks for a credential's token, tokenless (policy open) or as a client. */
function token(home: TestHome, name: string, clientToken?: string) {
  return socketRequest(home.socket, 'POST', `/v1/credentials/${name}/token`, {
    body: {},
    ...(clientToken ? { headers: bearer(clientToken) } : {}),
  });
}

async function assertServes(home: TestHome, name: string, key: string, clientToken?: string): Promise<void> {
  const res = await token(home, name, clientToken);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.access_token, key);
}

async function assertCorrupt(home: TestHome, name: string, clientToken?: string): Promise<void> {
  const res = await token(home, name, clientToken);
  assert.equal(res.body?.error?.code, 'VAULT_CORRUPT', `${name}: ${res.status} ${res.text}`);
  for (const key of [GITHUB_KEY, WEATHER_KEY, OTHER_KEY]) assert.ok(!res.text.includes(key));
}

/** A loopback server that plays an attacker's token endpoint and counts what reaches it. */
async function startTrap(t: TestContext): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests += 1;
    req.resume();
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end('{"error":"invalid_grant"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    requests: () => requests,
  };
}

async function oauthServer(t: TestContext): Promise<OidcServer> {
  const server = await startOidcServer({ accessTokenTtl: 300 });
  t.after(() => server.close());
  return server;
}

test('(a) swapped names: a client allowed weather never gets github; both are VAULT_CORRUPT, others work', async (t) => {
  const setup = await setUp(t);
  const { home, weatherClient } = setup;
  await assertServes(home, 'weather', WEATHER_KEY, weatherClient);
  await editOffline(setup, (db) => {
    db.prepare("UPDATE credentials SET name = 'tmp-swap' WHERE name = 'github'").run();
    db.prepare("UPDATE credentials SET name = 'github' WHERE name = 'weather'").run();
    db.prepare("UPDATE credentials SET name = 'weather' WHERE name = 'tmp-swap'").run();
  });
  await assertCorrupt(home, 'weather', weatherClient);
  await assertCorrupt(home, 'github');
  const cli = await runCli(home, ['token', 'weather']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^keyward: VAULT_CORRUPT: .*keyward remove weather/m);
  assert.ok(!cli.stdout.includes(GITHUB_KEY));
  await assertServes(home, 'other', OTHER_KEY);
  // status still lists both, as errors, and the user can remove them.
  const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
  const states = Object.fromEntries(status.credentials.map((c: any) => [c.name, c.state]));
  assert.deepEqual(states, { github: 'error', other: 'ready', weather: 'error' });
  assert.equal((await runCli(home, ['remove', 'weather'])).code, 0);
});

test('(b) a rewritten token_endpoint gets no request: VAULT_CORRUPT, others work', async (t) => {
  const server = await oauthServer(t);
  const trap = await startTrap(t);
  const setup = await setUp(t);
  const { home } = setup;
  await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
  const first = await token(home, 'svc');
  assert.equal(first.status, 200, first.text);
  await editOffline(setup, (db) => {
    const row = db.prepare("SELECT config FROM credentials WHERE name = 'svc'").get() as { config: string };
    const config = JSON.parse(row.config);
    config.token_endpoint = trap.url;
    db.prepare("UPDATE credentials SET config = ? WHERE name = 'svc'").run(JSON.stringify(config));
  });
  // A report that the token was rejected would make the daemon refresh at the token endpoint.
  const refreshed = await socketRequest(home.socket, 'POST', '/v1/credentials/svc/invalidate', {
    body: { access_token: first.body.access_token },
  });
  assert.equal(refreshed.body?.error?.code, 'VAULT_CORRUPT', refreshed.text);
  await assertCorrupt(home, 'svc');
  const removed = await runCli(home, ['remove', 'svc']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(trap.requests(), 0, 'a request reached the endpoint written into the vault');
  await assertServes(home, 'other', OTHER_KEY);
});

test('(c) a credential row put back from an older copy is VAULT_CORRUPT', async (t) => {
  const server = await oauthServer(t);
  const setup = await setUp(t);
  const { home } = setup;
  await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
  const first = await token(home, 'svc');
  assert.equal(first.status, 200, first.text);
  let older: Record<string, unknown> = {};
  await editOffline(setup, (db) => {
    older = snapshotRow(db, 'credentials', 'name', 'svc');
  });
  const again = await socketRequest(home.socket, 'POST', '/v1/credentials/svc/invalidate', {
    body: { access_token: first.body.access_token },
  });
  assert.equal(again.status, 200, again.text);
  await editOffline(setup, (db) => restoreRow(db, 'credentials', 'name', 'svc', older));
  await assertCorrupt(home, 'svc');
  await assertServes(home, 'other', OTHER_KEY);
});

test('(d) an edited client allow list or token hash: that client is refused, others work', async (t) => {
  const setup = await setUp(t);
  const { home, weatherClient } = setup;
  const otherClient = (await runCli(home, ['client', 'add', 'other-mcp', '--allow', 'other'])).stdout.trim();
  const attackerToken = `kwc_${crypto.randomBytes(32).toString('base64url')}`;
  const third = (await runCli(home, ['client', 'add', 'third-mcp', '--allow', 'other'])).stdout.trim();
  await editOffline(setup, (db) => {
    db.prepare(`UPDATE clients SET allow = '["github","weather"]' WHERE name = 'weather-mcp'`).run();
    const hash = crypto.createHash('sha256').update(attackerToken).digest();
    db.prepare(`UPDATE clients SET token_hash = ? WHERE name = 'third-mcp'`).run(hash);
  });
  const widened = await token(home, 'github', weatherClient);
  assert.equal(widened.body?.error?.code, 'VAULT_CORRUPT', widened.text);
  assert.ok(!widened.text.includes(GITHUB_KEY));
  assert.match(widened.body.error.message, /client "weather-mcp"/);
  assert.equal((await token(home, 'weather', weatherClient)).body?.error?.code, 'VAULT_CORRUPT');
  const forged = await token(home, 'other', attackerToken);
  assert.notEqual(forged.status, 200, 'a token hash written into the vault admits its token');
  assert.ok(!forged.text.includes(OTHER_KEY));
  assert.equal((await token(home, 'other', third)).body?.error?.code, 'UNAUTHENTICATED');
  await assertServes(home, 'other', OTHER_KEY, otherClient);
});

test('(e) the policy edited, deleted or rolled back from strict to open stays strict', async (t) => {
  const setup = await setUp(t);
  const { home } = setup;
  assert.equal((await runCli(home, ['policy', 'set', 'open'])).code, 0);
  let openRow: Record<string, unknown> = {};
  await editOffline(setup, (db) => {
    openRow = snapshotRow(db, 'kv', 'key', 'policy');
  });
  assert.equal((await runCli(home, ['policy', 'set', 'strict'])).code, 0);
  const attacks: Array<[string, (db: Database.Database) => void]> = [
    ['edited', (db) => db.prepare("UPDATE kv SET value = 'open' WHERE key = 'policy'").run()],
    ['deleted', (db) => db.prepare("DELETE FROM kv WHERE key = 'policy'").run()],
    ['rolled back', (db) => restoreRow(db, 'kv', 'key', 'policy', openRow)],
  ];
  for (const [how, attack] of attacks) {
    await editOffline(setup, attack);
    const anonymous = await token(home, 'other');
    assert.equal(anonymous.status, 401, `${how}: ${anonymous.text}`);
    assert.equal(anonymous.body.error.code, 'UNAUTHENTICATED');
    const shown = await runCli(home, ['policy', 'show']);
    assert.equal(shown.stdout.trim(), 'strict', how);
    // The admin can set it again, which seals it anew.
    assert.equal((await runCli(home, ['policy', 'set', 'strict'])).code, 0);
    assert.equal((await runCli(home, ['token', 'other'])).stdout.trim(), OTHER_KEY);
  }
});

test('(f) a kind flipped api_key <-> oauth is VAULT_CORRUPT, others work', async (t) => {
  const server = await oauthServer(t);
  const setup = await setUp(t);
  const { home } = setup;
  await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
  await editOffline(setup, (db) => {
    db.prepare("UPDATE credentials SET kind = 'oauth' WHERE name = 'github'").run();
    db.prepare("UPDATE credentials SET kind = 'api_key' WHERE name = 'svc'").run();
  });
  await assertCorrupt(home, 'github');
  await assertCorrupt(home, 'svc');
  await assertServes(home, 'other', OTHER_KEY);
});
