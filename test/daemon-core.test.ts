/**
 * The core vertical slice, end to end: the real daemon on a real socket with a real SQLite vault,
 * driven through the CLI, raw HTTP on the socket and the SDK.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeywardClient, KeywardError } from '../client/index.js';
import {
  type DaemonProcess,
  filesContaining,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
  waitForHealth,
} from './helpers/daemon-process.js';

const SECRET = 'sk-live-CORE-Zq8w1Xy9-unmistakable-secret';

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

describe('keyward daemon core', () => {
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  test('creates the vault on first start with private modes', () => {
    assert.equal(mode(home.home), 0o700);
    assert.equal(mode(path.dirname(home.socket)), 0o700);
    assert.equal(mode(home.socket), 0o600);
    assert.equal(mode(path.join(home.home, 'vault.db')), 0o600);
    assert.equal(mode(path.join(home.home, 'admin.token')), 0o600);
    assert.match(fs.readFileSync(path.join(home.home, 'admin.token'), 'utf8'), /^kwa_[A-Za-z0-9_-]{20,}\n$/);
    assert.match(daemon.output(), /created a new vault at/);
  });

  test('health answers with the version', async () => {
    const res = await socketRequest(home.socket, 'GET', '/v1/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok', version: '0.1.0' });
  });

  test('an API key round-trips through the CLI, the socket and the SDK', async () => {
    const add = await runCli(home, ['add', 'github', '--api-key'], { input: `${SECRET}\n` });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, '');

    const token = await runCli(home, ['token', 'github']);
    assert.equal(token.code, 0, token.stderr);
    assert.equal(token.stdout, `${SECRET}\n`);

    const raw = await socketRequest(home.socket, 'POST', '/v1/credentials/github/token', { body: {} });
    assert.equal(raw.status, 200);
    assert.deepEqual(raw.body, { access_token: SECRET, token_type: 'Bearer', expires_at: null, scope: null });

    const kw = new KeywardClient({ socketPath: home.socket });
    const viaSdk = await kw.getToken('github', { minTtl: 120 });
    assert.equal(viaSdk.accessToken, SECRET);
    assert.equal(viaSdk.expiresAt, null);
    const invalidated = await kw.invalidate('github', SECRET);
    assert.equal(invalidated.accessToken, SECRET);
  });

  test('a CRLF-terminated key from stdin loses only its line ending; an empty one is refused', async () => {
    const add = await runCli(home, ['add', 'crlf', '--api-key', '--token-type', 'token'], {
      input: 'abc def\r\n',
    });
    assert.equal(add.code, 0, add.stderr);
    const raw = await socketRequest(home.socket, 'POST', '/v1/credentials/crlf/token', {
      body: { min_ttl: 5 },
    });
    assert.equal(raw.body.access_token, 'abc def');
    assert.equal(raw.body.token_type, 'token');

    const empty = await runCli(home, ['add', 'empty', '--api-key'], { input: '\n' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /^keyward: INVALID_REQUEST: the API key is empty/m);
  });

  test('status lists credentials without any secret', async () => {
    const res = await runCli(home, ['status', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const status = JSON.parse(res.stdout);
    assert.equal(status.pid, daemon.child.pid);
    assert.equal(status.socket, home.socket);
    assert.equal(status.vault.key_store, 'file');
    const github = status.credentials.find((c: { name: string }) => c.name === 'github');
    assert.deepEqual(github, {
      name: 'github',
      kind: 'api_key',
      state: 'ready',
      grant: null,
      issuer: null,
      scope: null,
      expires_at: null,
      last_refresh_at: null,
      last_error: null,
    });
    assert.ok(!res.stdout.includes(SECRET));
    const table = await runCli(home, ['status']);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /github\s*│?\s*api_key/);
    assert.ok(!table.stdout.includes(SECRET));
  });

  test('exit codes: unknown credential 4, bad name 2, unknown flag 2, duplicate 1', async () => {
    const missing = await runCli(home, ['token', 'nope']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /^keyward: NOT_FOUND: no credential named "nope"/m);

    const badName = await runCli(home, ['token', '../etc']);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /^keyward: INVALID_REQUEST: bad credential name/m);

    const badFlag = await runCli(home, ['token', 'github', '--bogus']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /^keyward: INVALID_REQUEST: unknown option '--bogus'/m);

    const dup = await runCli(home, ['add', 'github', '--api-key'], { input: 'other' });
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^keyward: ALREADY_EXISTS: /m);
  });

  test('hostile input gets the right 4xx and the daemon keeps serving', async () => {
    const cases: Array<[string, Promise<{ status: number; body: any }>, number, string]> = [
      [
        'malformed JSON',
        socketRequest(home.socket, 'POST', '/v1/credentials', { raw: '{"name":' }),
        400,
        'INVALID_REQUEST',
      ],
      [
        'unknown field',
        socketRequest(home.socket, 'POST', '/v1/credentials', {
          body: { name: 'x', kind: 'api_key', secret: 's', extra: 1 },
        }),
        400,
        'INVALID_REQUEST',
      ],
      [
        'unknown field on token',
        socketRequest(home.socket, 'POST', '/v1/credentials/github/token', { body: { minTtl: 3 } }),
        400,
        'INVALID_REQUEST',
      ],
      [
        '../ name',
        socketRequest(home.socket, 'POST', '/v1/credentials/..%2Fetc/token', { body: {} }),
        400,
        'INVALID_REQUEST',
      ],
      [
        '../ name in body',
        socketRequest(home.socket, 'POST', '/v1/credentials', {
          body: { name: '../x', kind: 'api_key', secret: 's' },
        }),
        400,
        'INVALID_REQUEST',
      ],
      [
        '100 KiB body',
        socketRequest(home.socket, 'POST', '/v1/credentials', {
          body: { name: 'big', kind: 'api_key', secret: 'x'.repeat(100 * 1024) },
        }),
        413,
        'PAYLOAD_TOO_LARGE',
      ],
      [
        'Origin header',
        socketRequest(home.socket, 'GET', '/v1/status', { headers: { origin: 'https://evil.example' } }),
        403,
        'FORBIDDEN',
      ],
      [
        'Referer header',
        socketRequest(home.socket, 'POST', '/v1/credentials/github/token', {
          body: {},
          headers: { referer: 'https://evil.example/' },
        }),
        403,
        'FORBIDDEN',
      ],
      [
        'wrong content type',
        socketRequest(home.socket, 'POST', '/v1/credentials/github/token', {
          raw: 'hello',
          headers: { 'content-type': 'text/plain' },
        }),
        400,
        'INVALID_REQUEST',
      ],
      ['unknown route', socketRequest(home.socket, 'GET', '/v1/nope'), 404, 'NOT_FOUND'],
      [
        'wrong kind',
        socketRequest(home.socket, 'POST', '/v1/credentials', { body: { name: 'k', kind: 'ssh' } }),
        400,
        'INVALID_REQUEST',
      ],
      [
        'bad bearer',
        socketRequest(home.socket, 'GET', '/v1/status', { headers: { authorization: 'Bearer kwa_wrong' } }),
        401,
        'UNAUTHENTICATED',
      ],
    ];
    for (const [label, pending, status, code] of cases) {
      const res = await pending;
      assert.equal(res.status, status, `${label}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body?.error?.code, code, label);
      assert.equal(typeof res.body.error.message, 'string', label);
    }

    // Garbage bytes that are not HTTP at all get a 400 in the contract's shape.
    const garbage = await new Promise<string>((resolve) => {
      let answer = '';
      const conn = net.connect({ path: home.socket }, () =>
        conn.write(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10])),
      );
      conn.on('data', (d: Buffer) => {
        answer += d.toString();
      });
      conn.on('close', () => resolve(answer));
      conn.on('error', () => resolve(answer));
    });
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.match(garbage, /"code":"INVALID_REQUEST"/);

    // Still serving, and nothing was lost.
    const again = await socketRequest(home.socket, 'POST', '/v1/credentials/github/token', { body: {} });
    assert.equal(again.status, 200);
    assert.equal(again.body.access_token, SECRET);
    const names = (await socketRequest(home.socket, 'GET', '/v1/status')).body.credentials.map(
      (c: { name: string }) => c.name,
    );
    assert.ok(!names.includes('big') && !names.includes('x'));
  });

  test('the SDK reports an unreachable daemon with a hint', async () => {
    const kw = new KeywardClient({ socketPath: path.join(home.home, 'nowhere.sock') });
    await assert.rejects(kw.getToken('github'), (err: unknown) => {
      assert.ok(err instanceof KeywardError);
      assert.equal(err.code, 'DAEMON_UNAVAILABLE');
      assert.match(err.message, /keyward daemon/);
      return true;
    });
    const kw2 = new KeywardClient({ socketPath: home.socket });
    await assert.rejects(
      kw2.getToken('missing'),
      (err: unknown) => err instanceof KeywardError && err.code === 'NOT_FOUND',
    );
  });

  test('a second daemon refuses to start and names the running one', async () => {
    const second = await startDaemon(home, { wait: false });
    const code = await second.exited;
    assert.equal(code, 1);
    assert.match(
      second.output(),
      /^keyward: ALREADY_EXISTS: another keyward daemon \(pid \d+\) is already running/m,
    );
    // The first one is unaffected.
    assert.equal((await socketRequest(home.socket, 'GET', '/v1/health')).status, 200);
  });

  test('no secret appears in clear in any file under KEYWARD_HOME or in the daemon output', async () => {
    // Churn the vault so the WAL holds pages of every kind.
    for (let i = 0; i < 5; i++) {
      const res = await runCli(home, ['add', `churn${i}`, '--api-key'], { input: `${SECRET}-churn${i}` });
      assert.equal(res.code, 0, res.stderr);
    }
    await runCli(home, ['remove', 'churn0']);
    assert.ok(fs.existsSync(path.join(home.home, 'vault.db-wal')), 'the WAL exists and is checked too');
    assert.deepEqual(filesContaining(home.home, SECRET), []);
    assert.deepEqual(filesContaining(path.dirname(home.socket), SECRET), []);
    assert.ok(!daemon.output().includes(SECRET));
  });

  test('SIGTERM exits 0 and a kill -9 leaves a stale socket that does not block the next start', async () => {
    const code = await daemon.stop('SIGTERM');
    assert.equal(code, 0);

    daemon = await startDaemon(home);
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    assert.ok(fs.existsSync(home.socket), 'the killed daemon left its socket behind');

    const down = await runCli(home, ['status', '--json']);
    assert.equal(down.code, 3);
    const offline = JSON.parse(down.stdout);
    assert.equal(offline.running, false);
    assert.ok(offline.credentials.some((c: { name: string }) => c.name === 'github'));
    assert.match(down.stderr, /keyward daemon/);

    daemon = await startDaemon(home);
    await waitForHealth(home.socket);
    const token = await runCli(home, ['token', 'github']);
    assert.equal(token.stdout, `${SECRET}\n`);
  });
});

test('the daemon refuses a home that others can read, naming it and the fix', async () => {
  const home = makeHome();
  try {
    fs.mkdirSync(home.home, { recursive: true, mode: 0o755 });
    fs.chmodSync(home.home, 0o755);
    const daemon = await startDaemon(home, { wait: false });
    assert.equal(await daemon.exited, 1);
    assert.match(daemon.output(), new RegExp(`^keyward: FORBIDDEN: .*${home.home}.*chmod 700`, 'm'));
    assert.ok(!fs.existsSync(path.join(home.home, 'vault.db')), 'nothing was created in it');
  } finally {
    home.cleanup();
  }
});
