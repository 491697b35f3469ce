/**
 * Access control end to end (contract.md "Access control"): the real daemon and CLI in a temp
 * home, raw HTTP on the socket and the SDK. A client reaches only what it was allowed, a removed
 * client is cut off at once, strict mode shuts tokenless callers out while the CLI keeps working,
 * and no token is left in clear anywhere.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeywardClient, KeywardError } from '../client/index.js';
import { ROUTES } from '../daemon/routes.js';
import {
  type DaemonProcess,
  filesContaining,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const KEY_A = 'sk-access-A-7f3e9c1d-unmistakable';
const KEY_B = 'sk-access-B-0b2a8e4f-unmistakable';

/** Builds an SDK client that picks its token up from KEYWARD_CLIENT_TOKEN, as an MCP server would. */
function sdkWithEnvToken(socket: string, token: string | undefined): KeywardClient {
  const saved = process.env.KEYWARD_CLIENT_TOKEN;
  if (token === undefined) delete process.env.KEYWARD_CLIENT_TOKEN;
  else process.env.KEYWARD_CLIENT_TOKEN = token;
  try {
    return new KeywardClient({ socketPath: socket });
  } finally {
    if (saved === undefined) delete process.env.KEYWARD_CLIENT_TOKEN;
    else process.env.KEYWARD_CLIENT_TOKEN = saved;
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof KeywardError && err.code === code);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('access control against the real daemon', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let token: string;
  const removedTokens: string[] = [];

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    for (const [name, key] of [
      ['a', KEY_A],
      ['b', KEY_B],
    ] as const) {
      const added = await runCli(home, ['add', name, '--api-key'], { input: key });
      assert.equal(added.code, 0, added.stderr);
    }
    const client = await runCli(home, ['client', 'add', 'mcp', '--allow', 'a']);
    assert.equal(client.code, 0, client.stderr);
    token = client.stdout.trim();
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  test('client add prints the kwc_ token alone on stdout, once; list never shows it', async () => {
    assert.match(token, /^kwc_[A-Za-z0-9_-]{43}$/);
    const list = await runCli(home, ['client', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const clients = JSON.parse(list.stdout);
    assert.deepEqual(
      clients.map((c: { name: string; allow: string[] }) => [c.name, c.allow]),
      [['mcp', ['a']]],
    );
    assert.ok(!list.stdout.includes(token));
    const table = await runCli(home, ['client', 'list']);
    assert.match(table.stdout, /mcp\s*│\s*a\s*│/);
    const dup = await runCli(home, ['client', 'add', 'mcp', '--allow', 'b']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^keyward: ALREADY_EXISTS: /m);
    assert.equal(dup.stdout, '');
    const noAllow = await runCli(home, ['client', 'add', 'other']);
    assert.equal(noAllow.code, 2);
  });

  test('a client allowed a gets a, and is refused b, status and every admin route', async () => {
    const ok = await socketRequest(home.socket, 'POST', '/v1/credentials/a/token', {
      body: {},
      headers: bearer(token),
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.access_token, KEY_A);
    const inv = await socketRequest(home.socket, 'POST', '/v1/credentials/a/invalidate', {
      body: { access_token: KEY_A },
      headers: bearer(token),
    });
    assert.equal(inv.status, 200);

    const refused = await socketRequest(home.socket, 'POST', '/v1/credentials/b/token', {
      body: {},
      headers: bearer(token),
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'FORBIDDEN');
    assert.ok(!refused.text.includes(KEY_B));

    const health = await socketRequest(home.socket, 'GET', '/v1/health', { headers: bearer(token) });
    assert.equal(health.status, 200);

    const admin = ROUTES.filter((r) => r.access === 'admin');
    assert.ok(admin.some((r) => r.path === '/status') && admin.some((r) => r.path === '/clients'));
    for (const route of admin) {
      const url = `/v1${route.path}`
        .replace(':name', 'a')
        .replace(':client', 'mcp')
        .replace(':flow_id', 'flow0123456789');
      const res = await socketRequest(home.socket, route.method, url, {
        // Node sends a DELETE body with neither length nor chunking; send bodies on POST only.
        ...(route.method === 'POST' ? { body: {} } : {}),
        headers: bearer(token),
      });
      assert.equal(res.status, 403, `${route.method} ${url} answered ${res.status} ${res.text}`);
      assert.equal(res.body.error.code, 'FORBIDDEN');
    }
    // Nothing changed: the client still exists, b is still there.
    const list = await runCli(home, ['client', 'list', '--json']);
    assert.equal(JSON.parse(list.stdout).length, 1);
  });

  test('the SDK with KEYWARD_CLIENT_TOKEN behaves the same', async () => {
    const kw = sdkWithEnvToken(home.socket, token);
    assert.equal((await kw.getToken('a')).accessToken, KEY_A);
    assert.equal((await kw.invalidate('a', KEY_A)).accessToken, KEY_A);
    await rejectsWith(kw.getToken('b'), 'FORBIDDEN');
    await rejectsWith(kw.invalidate('b', 'x'), 'FORBIDDEN');
    assert.equal((await kw.health()).status, 'ok');
    const wrong = sdkWithEnvToken(home.socket, `${token.slice(0, -2)}xx`);
    await rejectsWith(wrong.getToken('a'), 'UNAUTHENTICATED');
  });

  test('a removed client is refused at once, even on a connection kept alive', async () => {
    const added = await runCli(home, ['client', 'add', 'doomed', '--allow', 'a,b']);
    const doomed = added.stdout.trim();
    removedTokens.push(doomed);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ask = () =>
      new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
        const req = http.request(
          {
            socketPath: home.socket,
            method: 'POST',
            path: '/v1/credentials/b/token',
            agent,
            headers: { ...bearer(doomed), 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    try {
      const first = await ask();
      assert.equal(first.status, 200);
      const removed = await runCli(home, ['client', 'remove', 'doomed']);
      assert.equal(removed.code, 0, removed.stderr);
      const second = await ask();
      assert.equal(second.status, 401);
      assert.equal(second.socket, first.socket, 'the test meant to reuse the connection');
    } finally {
      agent.destroy();
    }
    const kw = sdkWithEnvToken(home.socket, doomed);
    await rejectsWith(kw.getToken('a'), 'UNAUTHENTICATED');
    const again = await runCli(home, ['client', 'remove', 'doomed']);
    assert.equal(again.code, 4);
  });

  test('strict mode refuses tokenless requests but health; the CLI and clients keep working', async () => {
    const set = await runCli(home, ['policy', 'set', 'strict']);
    assert.equal(set.code, 0, set.stderr);
    try {
      const show = await runCli(home, ['policy', 'show']);
      assert.equal(show.stdout, 'strict\n');

      for (const [method, url, body] of [
        ['POST', '/v1/credentials/a/token', {}],
        ['POST', '/v1/credentials/a/invalidate', { access_token: 'x' }],
        ['GET', '/v1/status', undefined],
        ['GET', '/v1/clients', undefined],
        ['POST', '/v1/policy', { policy: 'open' }],
      ] as const) {
        const res = await socketRequest(home.socket, method, url, body === undefined ? {} : { body });
        assert.equal(res.status, 401, `${method} ${url}`);
        assert.equal(res.body.error.code, 'UNAUTHENTICATED');
      }
      assert.equal((await socketRequest(home.socket, 'GET', '/v1/health')).status, 200);

      const anonymous = sdkWithEnvToken(home.socket, undefined);
      await rejectsWith(anonymous.getToken('a'), 'UNAUTHENTICATED');
      assert.equal((await anonymous.health()).status, 'ok');
      const client = sdkWithEnvToken(home.socket, token);
      assert.equal((await client.getToken('a')).accessToken, KEY_A);
      await rejectsWith(client.getToken('b'), 'FORBIDDEN');

      const cli = await runCli(home, ['token', 'b']);
      assert.equal(cli.stdout, `${KEY_B}\n`);
      const status = await runCli(home, ['status', '--json']);
      assert.equal(JSON.parse(status.stdout).policy, 'strict');
    } finally {
      const open = await runCli(home, ['policy', 'set', 'open']);
      assert.equal(open.code, 0, open.stderr);
    }
    const res = await socketRequest(home.socket, 'POST', '/v1/credentials/b/token', { body: {} });
    assert.equal(res.status, 200);
    const status = await runCli(home, ['status', '--json']);
    assert.equal(JSON.parse(status.stdout).policy, 'open');
    const bad = await runCli(home, ['policy', 'set', 'lax']);
    assert.equal(bad.code, 2);
  });

  test('the audit log names the client, the peer and the outcome of each token, and admin changes', async () => {
    const kw = sdkWithEnvToken(home.socket, token);
    await kw.getToken('a');
    await rejectsWith(kw.getToken('b'), 'FORBIDDEN');
    const res = await runCli(home, ['audit', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const entries = res.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const ours = entries.filter((e) => e.peer?.pid === process.pid);
    const served = ours.find((e) => e.event === 'token' && e.credential === 'a' && e.outcome === 'ok');
    assert.ok(served, 'no audit line for the token served to this process');
    assert.equal(served.client, 'mcp');
    assert.equal(served.caller, 'client');
    assert.equal(served.refreshed, false);
    assert.equal(served.peer.uid, process.getuid?.() ?? null);
    if (process.platform === 'linux') assert.equal(served.peer.exe, fs.realpathSync(process.execPath));
    const denied = ours.find((e) => e.event === 'token' && e.credential === 'b' && e.outcome === 'denied');
    assert.equal(denied?.code, 'FORBIDDEN');
    assert.equal(denied?.client, 'mcp');
    const adds = entries.filter((e) => e.event === 'client.add' && e.outcome === 'ok').map((e) => e.target);
    assert.deepEqual(adds, ['mcp', 'doomed']);
    assert.ok(
      entries.some((e) => e.event === 'client.remove' && e.target === 'doomed' && e.caller === 'admin'),
    );
    assert.ok(entries.some((e) => e.event === 'policy.set' && e.target === 'strict'));
    assert.ok(
      entries.some((e) => e.event === 'token' && e.outcome === 'denied' && e.code === 'UNAUTHENTICATED'),
      'a revoked token asking for a token is audited',
    );
    assert.ok(!res.stdout.includes(KEY_A) && !res.stdout.includes(token));
    const verify = await runCli(home, ['audit', '--verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  test('no client or admin token is in clear in any file but admin.token, or in the daemon output', async () => {
    const adminFile = path.join(home.home, 'admin.token');
    const admin = fs.readFileSync(adminFile, 'utf8').trim();
    assert.match(admin, /^kwa_/);
    const base = path.dirname(home.home);
    assert.ok(fs.existsSync(path.join(home.home, 'vault.db-wal')), 'the WAL should be there to be searched');
    assert.ok(fs.existsSync(path.join(home.home, 'audit.log')));
    assert.deepEqual(filesContaining(base, admin), [adminFile]);
    for (const client of [token, ...removedTokens]) {
      assert.deepEqual(filesContaining(base, client), []);
      assert.deepEqual(filesContaining(base, client.slice(4)), []);
    }
    for (const secret of [admin, token, ...removedTokens]) {
      assert.ok(!daemon.output().includes(secret), 'a token is in the daemon output');
    }
    assert.match(daemon.output(), /access policy: open/);
  });
});
