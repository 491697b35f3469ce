/**
 * keyward against the authorization server behind many hosted remote MCP servers:
 * `@cloudflare/workers-oauth-provider` 1.2.3, unmodified, in workerd through miniflare
 * (test/fixtures/workers-oauth-server.ts), all on loopback. As a user would:
 * `keyward connect cf --remote <url>` prints a host entry; an MCP host (the SDK's stdio client)
 * starts it; the proxy logs in (URL on stderr, walked headlessly), lists and calls a tool; the
 * 60-second access token expires and the next call still works through one refresh; `keyward
 * remove` revokes, and the server then refuses the refresh token keyward held.
 *
 * The library's shortest access token is 60 s (KV's minimum expiry), so this file waits about a
 * minute, once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWorkersOAuthServer, type WorkersOAuthServer } from './fixtures/workers-oauth-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import type { HostEntry, ProxyHost } from './helpers/proxy-host.js';
import { startHostWithLogin } from './helpers/proxy-login.js';

const TTL_S = 60;

/** Calls `whoami` through a host and returns its parsed answer. */
async function whoami(host: ProxyHost): Promise<{ sub: string }> {
  const result = await host.client.callTool({ name: 'whoami', arguments: {} }, undefined, {
    timeout: 60_000,
  });
  assert.notEqual(result.isError, true, JSON.stringify(result.content));
  const content = result.content as Array<{ type: string; text: string }>;
  return JSON.parse(content[0]?.text ?? 'null');
}

describe('workers-oauth-provider in workerd, through keyward proxy', () => {
  let cf: WorkersOAuthServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  let entry: HostEntry;
  let host: ProxyHost | undefined;
  /** The authorization URL the proxy showed, and when its tokens were issued. */
  let authorizationUrl: URL;
  let loggedInAt = 0;

  before(async () => {
    cf = await startWorkersOAuthServer({ accessTokenTtl: TTL_S });
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await host?.close().catch(() => {});
    await daemon?.stop();
    await cf?.close();
    home?.cleanup();
  });

  test('connect --remote prints an entry that runs keyward proxy', async () => {
    const connect = await runCli(home, ['connect', 'cf', '--remote', cf.url]);
    assert.equal(connect.code, 0, connect.stderr);
    const printed = JSON.parse(connect.stdout) as { mcpServers: Record<string, HostEntry> };
    const cfEntry = printed.mcpServers.cf;
    assert.ok(cfEntry !== undefined, connect.stdout);
    assert.ok(cfEntry.args.includes('proxy') && cfEntry.args.includes('cf'), JSON.stringify(cfEntry));
    entry = cfEntry;
  });

  test('the proxy logs in headlessly, then lists and calls a tool', async () => {
    const started = await startHostWithLogin(entry, `${cf.origin}/authorize?`, (url) =>
      cf.completeAuthorization(url),
    );
    host = started.host;
    authorizationUrl = started.authorizationUrl;
    loggedInAt = Date.now();
    // The login went to the library as a client should: PKCE, the server's resource, a loopback port.
    assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorizationUrl.searchParams.get('resource'), cf.url);
    assert.match(
      authorizationUrl.searchParams.get('redirect_uri') ?? '',
      /^http:\/\/127\.0\.0\.1:\d+\/callback$/,
    );

    const { tools } = await host.client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ['whoami'],
    );
    assert.equal((await whoami(host)).sub, 'user-1');
    const events = await cf.events();
    assert.equal(events.grantSuccess.authorization_code, 1);
    assert.deepEqual(events.grantErrors, []);
  });

  test('a call after the access token expired is served through one refresh', async () => {
    assert.ok(host !== undefined && loggedInAt > 0, 'needs the logged-in host of the previous test');
    await sleep(Math.max(0, loggedInAt + TTL_S * 1000 + 2000 - Date.now()));
    assert.equal((await whoami(host)).sub, 'user-1');
    assert.equal((await whoami(host)).sub, 'user-1');
    const events = await cf.events();
    assert.equal(events.grantSuccess.refresh_token, 1, JSON.stringify(events.grantSuccess));
    assert.deepEqual(events.grantErrors, []);
    assert.ok(!host.stderr().includes(events.refreshTokens.at(-1) ?? '-'), 'a refresh token reached stderr');
  });

  test('remove revokes: the server refuses the refresh token keyward held', async () => {
    await host?.close();
    host = undefined;
    const before = await cf.events();
    const newest = before.refreshTokens.at(-1);
    assert.ok(newest !== undefined, 'the server issued no refresh token');
    const removed = await runCli(home, ['remove', 'cf']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /revoked/);
    assert.equal((await cf.events()).grantSuccess.revocation, 1);

    // Both the newest refresh token and the one it replaced (which the library would still
    // accept once, as a grace for a lost refresh answer) are refused: the grant is gone.
    const clientId = authorizationUrl.searchParams.get('client_id') ?? '';
    assert.equal(before.refreshTokens.length, 2, 'one from the login, one from the refresh');
    for (const token of [newest, before.refreshTokens[0] ?? '']) {
      const refused = await cf.refresh(token, clientId);
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error, 'invalid_grant');
    }
  });
});
