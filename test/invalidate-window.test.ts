/**
 * contract.md "Security (v2)": `invalidate` of the current token refreshes at most once per
 * credential per 10 s, and later reports in that window get the current token. Through the real
 * daemon against oidc-provider (refresh-token rotation on), counting the `refresh_token` grants
 * the server granted: a caller reporting each fresh token as rejected, in a loop, causes one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { addOAuthCredential, loginHeadless } from './helpers/oauth-cli.js';

/** Long-lived tokens: nothing but the reports can make the daemon refresh during a test. */
const TTL_S = 300;

async function loggedIn(
  server: OidcServer,
  env: NodeJS.ProcessEnv,
): Promise<{ home: TestHome; daemon: DaemonProcess }> {
  const home = makeHome(env);
  const daemon = await startDaemon(home);
  await addOAuthCredential(home, server, 'acme');
  const login = await loginHeadless(home, server, 'acme');
  assert.equal(login.code, 0, login.stderr);
  return { home, daemon };
}

async function token(home: TestHome): Promise<string> {
  const res = await socketRequest(home.socket, 'POST', '/v1/credentials/acme/token', { body: {} });
  assert.equal(res.status, 200, res.text);
  return res.body.access_token;
}

async function invalidate(home: TestHome, accessToken: string): Promise<string> {
  const res = await socketRequest(home.socket, 'POST', '/v1/credentials/acme/invalidate', {
    body: { access_token: accessToken },
  });
  assert.equal(res.status, 200, res.text);
  return res.body.access_token;
}

describe('invalidate is bounded per credential', () => {
  let server: OidcServer;
  const started: Array<{ home: TestHome; daemon: DaemonProcess }> = [];
  const refreshes = () => server.events.grantSuccess.refresh_token ?? 0;

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: TTL_S });
  });
  after(async () => {
    for (const { home, daemon } of started) {
      await daemon.stop();
      home.cleanup();
    }
    await server?.close();
  });

  test('reporting each fresh current token as rejected, 30 times in a row, refreshes once (default window)', async () => {
    // The test knob without KEYWARD_TESTING=1 must change nothing.
    const run = await loggedIn(server, { KEYWARD_TESTING: '', KEYWARD_TEST_INVALIDATE_WINDOW_MS: '0' });
    started.push(run);
    let current = await token(run.home);
    server.resetEvents();
    const served = new Set<string>();
    for (let i = 0; i < 30; i++) {
      current = await invalidate(run.home, current);
      served.add(current);
    }
    assert.equal(refreshes(), 1, `refresh grants at the server: ${refreshes()}`);
    assert.equal(served.size, 1, 'every report after the first got the current token');
    await server.verifyAccessToken(current);
    assert.deepEqual(server.events.grantErrors, []);
  });

  test('after the window one more refresh is allowed, and again only one', async () => {
    const windowMs = 2_000;
    const run = await loggedIn(server, {
      KEYWARD_TESTING: '1',
      KEYWARD_TEST_INVALIDATE_WINDOW_MS: String(windowMs),
    });
    started.push(run);
    const first = await token(run.home);
    server.resetEvents();
    const refreshedAt = Date.now();
    const second = await invalidate(run.home, first);
    assert.notEqual(second, first);
    let current = second;
    for (let i = 0; i < 10; i++) current = await invalidate(run.home, current);
    assert.equal(current, second);
    assert.equal(refreshes(), 1);

    await sleep(Math.max(0, refreshedAt + windowMs + 200 - Date.now()));
    const third = await invalidate(run.home, current);
    assert.notEqual(third, second, 'past the window the report refreshed');
    assert.equal(refreshes(), 2);
    current = third;
    for (let i = 0; i < 10; i++) current = await invalidate(run.home, current);
    assert.equal(current, third);
    assert.equal(refreshes(), 2);
    assert.deepEqual(server.events.grantErrors, []);
  });
});
