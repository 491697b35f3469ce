/**
 * OAuth through the real daemon process and the real CLI, against a real authorization server
 * (oidc-provider 9.13.3 on loopback, rotation and reuse detection on, 5-second access tokens):
 * login headlessly through `--no-browser`, device grant, client credentials, many processes
 * after expiry, invalidate, kill -9 and restart, injected 503s, a forgotten grant, revocation.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  filesContaining,
  makeHome,
  REPO_ROOT,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { addOAuthCredential, loginHeadless } from './helpers/oauth-cli.js';

const TTL_S = 5;

/**
 * Starts `workers` processes that each connect to the daemon, then, once all are ready, fetch
 * `perWorker` tokens at once through the SDK. `fire` is called when every worker is ready, so the
 * burst itself is tight however slowly the processes start.
 */
async function tokenStorm(
  home: TestHome,
  name: string,
  workers: number,
  perWorker: number,
  beforeFire: () => Promise<void>,
): Promise<string[]> {
  const script = `
    const { KeywardClient } = await import('keyward/client');
    const kw = new KeywardClient();
    await kw.health();
    process.stdout.write('ready\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    const tokens = await Promise.all(Array.from({ length: ${perWorker} }, () => kw.getToken(${JSON.stringify(name)})));
    process.stdout.write(JSON.stringify(tokens.map((t) => t.accessToken)));
    process.stdin.destroy();
  `;
  const ready: Array<Promise<void>> = [];
  const children = Array.from({ length: workers }, () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: home.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    ready.push(
      new Promise<void>((resolve) =>
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.startsWith('ready\n')) resolve();
        }),
      ),
    );
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const done = new Promise<string[]>((resolve, reject) =>
      child.on('close', (c) =>
        c === 0
          ? resolve(JSON.parse(out.slice('ready\n'.length)))
          : reject(new Error(`worker failed: ${err}`)),
      ),
    );
    return { child, done };
  });
  await Promise.all(ready);
  await beforeFire();
  for (const { child } of children) child.stdin.write('go\n');
  return (await Promise.all(children.map((c) => c.done))).flat();
}

describe('OAuth through the daemon', () => {
  let server: OidcServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  const seenTokens = new Set<string>();

  const token = async (name: string): Promise<string> => {
    const res = await runCli(home, ['token', name]);
    assert.equal(res.code, 0, res.stderr);
    const value = res.stdout.trim();
    seenTokens.add(value);
    return value;
  };
  const refreshes = (): number => server.events.grantSuccess.refresh_token ?? 0;

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: TTL_S });
    // These tests report the current token as rejected a few seconds apart on purpose (503s, a
    // forgotten grant, revocation); the 10 s invalidate window has its own test
    // (invalidate-window.test.ts), so it is turned off here.
    home = makeHome({ KEYWARD_TESTING: '1', KEYWARD_TEST_INVALIDATE_WINDOW_MS: '0' });
    daemon = await startDaemon(home);
  });
  after(async () => {
    await daemon?.stop();
    await server?.close();
    home?.cleanup();
  });

  test('add --oauth with discovery, then token before login says LOGIN_REQUIRED (exit 5)', async () => {
    const add = await runCli(
      home,
      [
        'add',
        'acme',
        '--oauth',
        '--issuer',
        server.issuer,
        '--client-id',
        server.clients.confidential.client_id,
        '--client-secret-stdin',
        '--scope',
        'openid api:read',
      ],
      { input: `${server.clients.confidential.client_secret}\n` },
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /keyward login acme/);

    const before = await runCli(home, ['token', 'acme']);
    assert.equal(before.code, 5);
    assert.match(before.stderr, /^keyward: LOGIN_REQUIRED: .*keyward login acme/m);

    const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
    const entry = status.credentials.find((c: { name: string }) => c.name === 'acme');
    assert.equal(entry.state, 'needs_login');
    assert.equal(entry.grant, 'authorization_code');
    assert.equal(entry.issuer, server.issuer);
  });

  test('login --no-browser prints the URL alone on stdout and completes; the token verifies', async () => {
    const login = await loginHeadless(home, server, 'acme');
    assert.equal(login.code, 0, login.stderr);
    const lines = login.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0] as string, /^http:\/\/127\.0\.0\.1:\d+\/.*code_challenge_method=S256/);

    const access = await token('acme');
    const claims = await server.verifyAccessToken(access);
    assert.equal(claims.iss, server.issuer);

    const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
    const entry = status.credentials.find((c: { name: string }) => c.name === 'acme');
    assert.equal(entry.state, 'ready');
    assert.ok(Date.parse(entry.expires_at) > Date.now());
  });

  test('8 processes x 25 callers after expiry: all served valid tokens, at most one refresh, no grant error', async () => {
    const stale = await token('acme');
    const tokens = await tokenStorm(home, 'acme', 8, 25, async () => {
      // Past half its lifetime the token no longer satisfies any caller (min_ttl is capped at
      // lifetime/2), so the burst needs a refresh unless the proactive one already happened.
      const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
      const expiresAt = Date.parse(
        status.credentials.find((c: { name: string }) => c.name === 'acme').expires_at,
      );
      await sleep(Math.max(0, expiresAt - Date.now() - (TTL_S / 2) * 1000 + 300));
      server.resetEvents();
    });
    assert.equal(tokens.length, 200);
    const distinct = new Set(tokens);
    assert.equal(distinct.size, 1, 'every caller got the same token');
    const [fresh] = distinct;
    assert.notEqual(fresh, stale, 'the stale token was not served');
    seenTokens.add(fresh as string);
    await server.verifyAccessToken(fresh as string);
    assert.ok(refreshes() <= 1, `at most one refresh reached the server (saw ${refreshes()})`);
    assert.deepEqual(server.events.grantErrors, []);
  });

  test('invalidate with the current token refreshes once; 20 stale reports refresh nothing', async () => {
    const current = await token('acme');
    server.resetEvents();
    const fresh = await socketRequest(home.socket, 'POST', '/v1/credentials/acme/invalidate', {
      body: { access_token: current },
    });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.body.access_token, current);
    assert.equal(refreshes(), 1);
    seenTokens.add(fresh.body.access_token);

    const stale = await Promise.all(
      Array.from({ length: 20 }, () =>
        socketRequest(home.socket, 'POST', '/v1/credentials/acme/invalidate', {
          body: { access_token: current },
        }),
      ),
    );
    for (const res of stale) assert.equal(res.body.access_token, fresh.body.access_token);
    assert.equal(refreshes(), 1, 'stale reports caused no refresh');
    assert.deepEqual(server.events.grantErrors, []);
  });

  test('kill -9, wait past expiry, restart: the persisted rotated refresh token works', async () => {
    await token('acme');
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    await sleep(TTL_S * 1000 + 500);
    server.resetEvents();
    daemon = await startDaemon(home);
    const access = await token('acme');
    await server.verifyAccessToken(access);
    assert.equal(refreshes(), 1);
    assert.deepEqual(server.events.grantErrors, []);
  });

  test('injected 503s are retried transparently', async () => {
    const current = await token('acme');
    server.resetEvents();
    server.injectTokenFailures(2, { status: 503, retryAfter: 0 });
    const started = Date.now();
    const res = await socketRequest(home.socket, 'POST', '/v1/credentials/acme/invalidate', {
      body: { access_token: current },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.notEqual(res.body.access_token, current);
    seenTokens.add(res.body.access_token);
    assert.equal(server.events.tokenRequests, 3, 'two failures, then the refresh that worked');
    assert.ok(Date.now() - started < 10_000);
    assert.deepEqual(server.events.grantErrors, []);
  });

  test('a forgotten grant gives LOGIN_REQUIRED (exit 5) and needs_login; a fresh login recovers', async () => {
    const current = await token('acme');
    server.forgetGrants();
    const res = await socketRequest(home.socket, 'POST', '/v1/credentials/acme/invalidate', {
      body: { access_token: current },
    });
    assert.equal(res.status, 428);
    assert.equal(res.body.error.code, 'LOGIN_REQUIRED');
    const cli = await runCli(home, ['token', 'acme']);
    assert.equal(cli.code, 5);
    assert.match(cli.stderr, /keyward login acme/);
    const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
    const entry = status.credentials.find((c: { name: string }) => c.name === 'acme');
    assert.equal(entry.state, 'needs_login');
    assert.equal(entry.last_error?.code, 'LOGIN_REQUIRED');
    const table = await runCli(home, ['status']);
    assert.match(table.stderr, /keyward login acme/);

    const login = await loginHeadless(home, server, 'acme');
    assert.equal(login.code, 0, login.stderr);
    await server.verifyAccessToken(await token('acme'));
  });

  test('device grant through the CLI', async () => {
    await addOAuthCredential(home, server, 'dev', { client: 'public', grant: 'device_code' });
    const login = await loginHeadless(home, server, 'dev', { device: true });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /open http:\/\/127\.0\.0\.1:\d+\/\S+ and enter the code: \S+/);
    await server.verifyAccessToken(await token('dev'));
  });

  test('client credentials: a token on demand, no login', async () => {
    await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
    await server.verifyAccessToken(await token('svc'));
  });

  test('no token the server issued, nor the client secret, is in clear on disk or in the daemon output', () => {
    assert.ok(seenTokens.size >= 5);
    for (const t of [...seenTokens, server.clients.confidential.client_secret]) {
      assert.deepEqual(filesContaining(home.home, t), []);
      assert.ok(!daemon.output().includes(t));
    }
  });

  test('remove revokes at the server (RFC 7009)', async () => {
    const access = await token('acme');
    const res = await runCli(home, ['remove', 'acme']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /revoked/);
    const gone = await runCli(home, ['token', 'acme']);
    assert.equal(gone.code, 4);
    assert.ok(access.length > 0);
  });
});
