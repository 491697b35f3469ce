/**
 * Every preset against a replay of its provider, through the real daemon and the real CLI. The
 * daemon runs with KEYWARD_TESTING=1 and KEYWARD_TEST_PROVIDER_ORIGIN pointing at the replay
 * server, so the preset's real paths, parameters, client authentication and headers reach a
 * loopback fixture that checks them against the provider's documentation and answers with the
 * provider's documented shapes (test/fixtures/provider-replay/scripts.ts, each with its source).
 *
 * Per preset: login by authorization code through a headless redirect; two refreshes (rotation
 * as documented); a dead refresh token (LOGIN_REQUIRED, needs_login, no retry); a second login
 * (device grant where offered, with the provider's pending answers); a transient failure
 * (UPSTREAM_UNAVAILABLE after retries, grant kept); `remove` revoking where the provider can;
 * and a device grant the user declines.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { PROVIDER_NAMES, PROVIDERS, type ProviderName } from '../daemon/oauth/providers.js';
import { ReplayServer } from './fixtures/provider-replay/replay-server.js';
import { SCRIPTS } from './fixtures/provider-replay/scripts.js';
import {
  CLI,
  type CliResult,
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

/** Refresh attempts the daemon makes before UPSTREAM_UNAVAILABLE (DEFAULT_TIMINGS: 1 + 3 retries). */
const REFRESH_ATTEMPTS = 4;

/** Runs `keyward login <name> --no-browser` and plays the browser: follows the URL it prints. */
async function loginByRedirect(
  home: TestHome,
  name: string,
): Promise<CliResult & { url: string | undefined }> {
  const child = spawn(process.execPath, [CLI, 'login', name, '--no-browser'], {
    env: home.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let url: string | undefined;
  let browsing: Promise<void> = Promise.resolve();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (url !== undefined) return;
    url = stdout
      .split('\n')
      .find((line) => line.startsWith('http'))
      ?.trim();
    if (url === undefined) return;
    const start = url;
    browsing = (async () => {
      // The provider's authorization endpoint answers with a redirect to keyward's loopback.
      const authorize = await fetch(start, { redirect: 'manual', signal: AbortSignal.timeout(20_000) });
      const location = authorize.headers.get('location');
      if (location === null)
        throw new Error(`no redirect from the authorization endpoint (${authorize.status})`);
      await (await fetch(location, { signal: AbortSignal.timeout(20_000) })).text();
    })().catch((err: unknown) => {
      stderr += `\n[browser] ${(err as Error).message}`;
    });
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  await browsing;
  return { code, stdout, stderr, url };
}

async function invalidate(home: TestHome, name: string, accessToken: string) {
  return socketRequest(home.socket, 'POST', `/v1/credentials/${name}/invalidate`, {
    body: { access_token: accessToken },
  });
}

async function statusOf(home: TestHome, name: string): Promise<{ state: string; scope: string | null }> {
  const result = await runCli(home, ['status', '--json']);
  const entry = (
    JSON.parse(result.stdout) as { credentials: Array<{ name: string; state: string; scope: string | null }> }
  ).credentials.find((c) => c.name === name);
  assert.ok(entry, `status lists ${name}`);
  return entry;
}

async function add(
  home: TestHome,
  name: string,
  preset: ProviderName,
  extra: string[] = [],
): Promise<CliResult> {
  const script = SCRIPTS[preset];
  const args = [
    'add',
    name,
    '--oauth',
    '--provider',
    preset,
    '--client-id',
    script.client.id,
    '--client-secret-stdin',
  ];
  if (script.scope.ask !== '') args.push('--scope', script.scope.ask);
  return runCli(home, [...args, ...extra], { input: script.client.secret });
}

for (const preset of PROVIDER_NAMES) {
  const script = SCRIPTS[preset];
  const hasDevice = PROVIDERS[preset].deviceAuthorizationEndpoint !== null;

  describe(`${preset}: replayed as documented (${Object.values(script.source)[0]})`, () => {
    let server: ReplayServer;
    let home: TestHome;
    let daemon: DaemonProcess;
    const name = preset;

    before(async () => {
      server = await new ReplayServer(script).start();
      home = makeHome({
        KEYWARD_TESTING: '1',
        KEYWARD_TEST_PROVIDER_ORIGIN: server.origin,
        // These tests report tokens as rejected to force refreshes; the 10 s invalidate window has its own test.
        KEYWARD_TEST_INVALIDATE_WINDOW_MS: '0',
      });
      daemon = await startDaemon(home);
    });

    after(async () => {
      await daemon?.stop();
      await server?.stop();
      home?.cleanup();
    });

    test('login by authorization code sends the documented requests and stores the token', async () => {
      const added = await add(home, name, preset);
      assert.equal(added.code, 0, added.stderr);
      const login = await loginByRedirect(home, name);
      assert.equal(login.code, 0, `${login.stderr}\n${daemon.output().slice(-3000)}`);
      const url = new URL(login.url ?? '');
      assert.equal(url.origin, server.origin, 'the preset endpoint was pointed at the replay server');
      assert.equal(url.pathname, new URL(PROVIDERS[preset].authorizationEndpoint).pathname, 'path kept');
      assert.equal(server.requestsTo('token', 'authorization_code').length, 1);
      const token = await runCli(home, ['token', name]);
      assert.equal(token.code, 0, token.stderr);
      assert.equal(token.stdout.trim(), server.currentAccess);
      assert.ok(token.stdout.startsWith(script.tokenPrefix.access), 'the documented token kind');
      assert.equal((await statusOf(home, name)).state, 'ready');
      assert.deepEqual(server.violations, []);
    });

    test(`refresh: ${script.rotation === 'keep' ? 'the old refresh token is kept' : 'the rotated refresh token is used next'}`, async () => {
      const loginRefresh = server.grant.latestRefresh;
      assert.ok(loginRefresh, 'the login issued a refresh token');
      const first = await invalidate(home, name, server.currentAccess ?? '');
      assert.equal(first.status, 200, first.text);
      assert.equal(first.body.access_token, server.currentAccess);
      assert.equal(first.body.token_type, 'Bearer', 'provider token types are served as Bearer');
      const afterFirst = server.grant.latestRefresh;
      const second = await invalidate(home, name, server.currentAccess ?? '');
      assert.equal(second.status, 200, second.text);
      assert.equal(second.body.access_token, server.currentAccess);
      const sent = server.requestsTo('token', 'refresh_token').map((r) => r.params.refresh_token);
      assert.equal(sent.length, 2);
      assert.equal(sent[0], loginRefresh);
      if (script.rotation === 'keep') {
        assert.equal(afterFirst, loginRefresh, 'the provider issued no new refresh token');
        assert.equal(sent[1], loginRefresh, 'the old refresh token is kept and used again');
      } else {
        assert.notEqual(afterFirst, loginRefresh);
        assert.equal(sent[1], afterFirst, 'the rotated refresh token is used next');
      }
      assert.deepEqual(server.violations, []);
    });

    test('a dead refresh token answered as documented means LOGIN_REQUIRED, without retrying', async () => {
      const before = server.requestsTo('token', 'refresh_token').length;
      server.refreshFailures.push(script.answers.deadRefresh);
      const res = await invalidate(home, name, server.currentAccess ?? '');
      assert.equal(res.status, 428, res.text);
      assert.equal(res.body.error.code, 'LOGIN_REQUIRED');
      assert.match(res.body.error.message, new RegExp(`keyward login ${name}`));
      assert.equal(
        server.requestsTo('token', 'refresh_token').length,
        before + 1,
        'no retry of a dead grant',
      );
      assert.equal((await statusOf(home, name)).state, 'needs_login');
      const token = await runCli(home, ['token', name]);
      assert.equal(token.code, 5, token.stderr);
    });

    test(`login again${hasDevice ? ' by device grant, through the documented pending answers' : ''}`, async () => {
      if (!hasDevice) {
        const login = await loginByRedirect(home, name);
        assert.equal(login.code, 0, login.stderr);
      } else {
        const device = script.answers.device;
        assert.ok(device);
        server.devicePlan = { pending: 2, outcome: 'approve' };
        const login = await runCli(home, ['login', name, '--device'], { timeoutMs: 60_000 });
        assert.equal(login.code, 0, `${login.stderr}\n${daemon.output().slice(-3000)}`);
        assert.ok(login.stderr.includes(device.verificationUri), `the CLI shows the URL: ${login.stderr}`);
        assert.match(login.stderr, /enter the code: USER-\d+/);
        const polls = server.requestsTo('token', 'urn:ietf:params:oauth:grant-type:device_code');
        assert.equal(polls.length, 3, 'two pending answers, then the token');
      }
      const token = await runCli(home, ['token', name]);
      assert.equal(token.stdout.trim(), server.currentAccess);
      assert.deepEqual(server.violations, []);
    });

    test('a transient failure is retried, then UPSTREAM_UNAVAILABLE; the grant is kept', async () => {
      const before = server.requestsTo('token', 'refresh_token').length;
      for (let i = 0; i < REFRESH_ATTEMPTS; i += 1) server.refreshFailures.push(script.answers.transient);
      const res = await invalidate(home, name, server.currentAccess ?? '');
      server.refreshFailures.length = 0;
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, 'UPSTREAM_UNAVAILABLE');
      assert.ok(server.requestsTo('token', 'refresh_token').length - before > 1, 'retried');
      assert.notEqual(
        (await statusOf(home, name)).state,
        'needs_login',
        'a transient failure keeps the grant',
      );
    });

    test(
      script.revokes === null
        ? 'remove: no revocation endpoint, nothing sent'
        : `remove revokes the ${script.revokes}`,
      async () => {
        const expected =
          script.revokes === 'access_token' ? server.currentAccess : server.grant.latestRefresh;
        const removed = await runCli(home, ['remove', name]);
        assert.equal(removed.code, 0, removed.stderr);
        const revocations = server.requestsTo('revoke');
        if (script.revokes === null) {
          assert.equal(revocations.length, 0);
          assert.doesNotMatch(removed.stderr, /revoked/);
        } else {
          assert.equal(revocations.length, 1);
          assert.equal(revocations[0]?.params[script.expect.revoke?.tokenField ?? 'token'], expected);
          assert.match(removed.stderr, /revoked at the server/);
        }
        assert.deepEqual(server.violations, []);
      },
    );

    if (hasDevice) {
      test('a device grant the user declines says the user declined', async () => {
        const declined = `${name}-declined`;
        const added = await add(home, declined, preset, ['--grant', 'device_code']);
        assert.equal(added.code, 0, added.stderr);
        server.devicePlan = { pending: 1, outcome: 'decline' };
        const login = await runCli(home, ['login', declined, '--device'], { timeoutMs: 60_000 });
        assert.equal(login.code, 5, login.stderr);
        assert.match(login.stderr, /keyward: LOGIN_REQUIRED: .*declined/);
        assert.equal((await statusOf(home, declined)).state, 'needs_login');
        assert.deepEqual(server.violations, []);
      });
    }
  });
}

test('microsoft: --resource is refused at add time (the v2 endpoints answer AADSTS901002)', async (t) => {
  const server = await new ReplayServer(SCRIPTS.microsoft).start();
  const home = makeHome({
    KEYWARD_TESTING: '1',
    KEYWARD_TEST_PROVIDER_ORIGIN: server.origin,
    // These tests report tokens as rejected to force refreshes; the 10 s invalidate window has its own test.
    KEYWARD_TEST_INVALIDATE_WINDOW_MS: '0',
  });
  const daemon = await startDaemon(home);
  t.after(async () => {
    await daemon.stop();
    await server.stop();
    home.cleanup();
  });
  const added = await add(home, 'ms', 'microsoft', ['--resource', 'https://graph.microsoft.com']);
  assert.equal(added.code, 2, added.stderr);
  assert.match(added.stderr, /INVALID_REQUEST: .*--resource/);
  assert.equal(server.requests.length, 0);
});

test('KEYWARD_TEST_PROVIDER_ORIGIN is ignored without KEYWARD_TESTING=1', async (t) => {
  const home = makeHome({ KEYWARD_TEST_PROVIDER_ORIGIN: 'http://127.0.0.1:9' });
  delete home.env.KEYWARD_TESTING;
  const daemon = await startDaemon(home);
  t.after(async () => {
    await daemon.stop();
    home.cleanup();
  });
  const added = await add(home, 'gh', 'github');
  assert.equal(added.code, 0, added.stderr);
  const login = await socketRequest(home.socket, 'POST', '/v1/credentials/gh/login', {
    body: { flow: 'authorization_code' },
  });
  assert.equal(login.status, 200, login.text);
  assert.ok(login.body.authorization_url.startsWith('https://github.com/login/oauth/authorize?'));
});
