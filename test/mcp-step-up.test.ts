/**
 * Step-up after a 403 `insufficient_scope` (RFC 6750 §3.1), against a remote MCP server built with
 * the real MCP SDK and protected by oidc-provider: its 401 names `api:read` (so the first login
 * asks for that), and its tool `write-note` needs `api:write`, which a call without it meets as
 * `403 Bearer error="insufficient_scope", scope="api:write"`.
 * - `keywardFetch` does not retry: it throws LOGIN_REQUIRED naming the login to run, with the
 *   granted and the missing scope; that login widens the grant, and the wider scope is kept
 *   (status, later logins), while a refused step-up changes nothing;
 * - the device grant threads the wider scope the same way;
 * - `KeywardOAuthProvider` turns the SDK's own upscoping into the daemon's login for the wider
 *   scope (no refresh), while a rejected token still only refreshes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { KeywardClient, KeywardError, KeywardOAuthProvider, keywardFetch } from '../client/mcp.js';
import { loginHeadless, refreshCount } from './fixtures/mcp-login.js';
import { type McpRemoteServer, startMcpRemoteServer } from './fixtures/mcp-remote-server.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

/** Long enough that no refresh happens unless a test causes one. */
const TTL_S = 300;

/** Calls a tool and returns its parsed answer (`sub`, `aud`, `scope` of the token it saw). */
async function call(client: Client, name: string): Promise<{ sub: string; aud: string; scope: string }> {
  const result = await client.callTool({ name, arguments: {} });
  const content = result.content as Array<{ type: string; text: string }>;
  return JSON.parse(content[0]?.text ?? 'null');
}

const scopes = (value: string | null | undefined): string[] =>
  (value ?? '').split(' ').filter(Boolean).sort();

describe('step-up after 403 insufficient_scope', () => {
  let as: OidcServer;
  let mcp: McpRemoteServer;
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    as = await startOidcServer({ accessTokenTtl: TTL_S });
    mcp = await startMcpRemoteServer(as, {
      scopesSupported: ['api:read', 'api:write'],
      challengeScope: 'api:read',
      scopedTools: { 'write-note': 'api:write' },
    });
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await daemon?.stop();
    await mcp?.close();
    await as?.close();
    home?.cleanup();
  });

  test('keywardFetch names the step-up login; that login widens the grant and the scope is kept', async () => {
    const add = await runCli(home, ['add', 'notes', '--mcp-server', mcp.url, '--json']);
    assert.equal(add.code, 0, add.stderr);
    // oidc-provider lists offline_access, so keyward asks for it (a refresh token) on top.
    assert.equal(JSON.parse(add.stdout).scope, 'api:read offline_access');
    const first = await loginHeadless(home, as, 'notes');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(new URL(first.url ?? '').searchParams.get('scope'), 'api:read offline_access');

    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(mcp.url), {
        fetch: keywardFetch('notes', { client: new KeywardClient({ socketPath: home.socket }) }),
      }),
    );
    try {
      assert.equal((await call(client, 'whoami')).scope, 'api:read');

      // The 403 is not retried (no refresh widens a grant): the error names the login to run.
      const refreshes = refreshCount(as);
      const tokenRequests = as.events.tokenRequests;
      const refused = await call(client, 'write-note').then(
        () => assert.fail('write-note succeeded without api:write'),
        (err: unknown) => err,
      );
      assert.ok(refused instanceof KeywardError, String(refused));
      assert.equal(refused.code, 'LOGIN_REQUIRED');
      assert.equal(
        refused.message,
        'the server needs scope "api:write": run: keyward login notes --scope \'api:read api:write\'',
      );
      assert.equal(mcp.stats.insufficientScope, 1);
      assert.equal(refreshCount(as), refreshes);
      assert.equal(as.events.tokenRequests, tokenRequests);

      // A step-up the user refuses leaves the credential's scope as it was.
      const denied = await loginHeadless(home, as, 'notes', { args: ['--scope', 'api:write'], deny: true });
      assert.equal(denied.code, 5, denied.stderr);
      assert.equal(new URL(denied.url ?? '').searchParams.get('scope'), 'api:read offline_access api:write');
      const plain = await loginHeadless(home, as, 'notes');
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(new URL(plain.url ?? '').searchParams.get('scope'), 'api:read offline_access');

      // The login the message names.
      const wanted = /--scope '([^']+)'$/.exec(refused.message)?.[1];
      assert.ok(wanted !== undefined);
      const up = await loginHeadless(home, as, 'notes', { args: ['--scope', wanted] });
      assert.equal(up.code, 0, up.stderr);
      const upUrl = new URL(up.url ?? '');
      assert.equal(upUrl.searchParams.get('scope'), 'api:read offline_access api:write');
      assert.equal(upUrl.searchParams.get('resource'), mcp.url);

      // The same connection now gets through, with a token that carries both scopes.
      const note = await call(client, 'write-note');
      assert.deepEqual(scopes(note.scope), ['api:read', 'api:write']);
      assert.equal(note.aud, mcp.url);
      assert.equal(mcp.stats.insufficientScope, 1);

      const status = await runCli(home, ['status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      const entry = JSON.parse(status.stdout).credentials.find((c: { name: string }) => c.name === 'notes');
      assert.deepEqual(scopes(entry.scope), ['api:read', 'api:write']);

      // The wider scope is the credential's own now: a plain login asks for it again.
      const later = await loginHeadless(home, as, 'notes');
      assert.equal(later.code, 0, later.stderr);
      assert.equal(new URL(later.url ?? '').searchParams.get('scope'), 'api:read offline_access api:write');
      assert.deepEqual(as.events.grantErrors, []);
    } finally {
      await client.close();
    }
  });

  test('the login route takes only RFC 6749 scope-tokens', async () => {
    for (const scope of ['', '   ', 'api:"write"', 'api\\write', 'caf\u00e9']) {
      const res = await socketRequest(home.socket, 'POST', '/v1/credentials/notes/login', {
        body: { flow: 'authorization_code', scope },
      });
      assert.equal(res.status, 400, `${JSON.stringify(scope)}: ${res.text}`);
      assert.equal(res.body.error.code, 'INVALID_REQUEST');
    }
    const cli = await runCli(home, ['login', 'notes', '--no-browser', '--scope', 'a"b']);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /^keyward: INVALID_REQUEST: /m);
  });

  test('the device grant asks for the widened scope too', async () => {
    const add = await runCli(home, [
      'add',
      'notes-device',
      '--mcp-server',
      mcp.url,
      '--grant',
      'device_code',
    ]);
    assert.equal(add.code, 0, add.stderr);
    const started = await socketRequest(home.socket, 'POST', '/v1/credentials/notes-device/login', {
      body: { flow: 'device_code', scope: 'api:write' },
    });
    assert.equal(started.status, 200, started.text);
    await as.approveDeviceCode(started.body.user_code);
    const deadline = Date.now() + 10_000;
    let state = 'pending';
    while (state === 'pending' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await socketRequest(home.socket, 'GET', `/v1/flows/${started.body.flow_id}`)).body.state;
    }
    assert.equal(state, 'complete');
    const token = await new KeywardClient({ socketPath: home.socket }).getToken('notes-device');
    assert.deepEqual(scopes(token.scope), ['api:read', 'api:write']);
    const claims = await as.verifyAccessToken(token.accessToken, mcp.url);
    assert.deepEqual(scopes(String(claims.scope)), ['api:read', 'api:write']);
  });

  test("KeywardOAuthProvider: the SDK's upscoping starts the daemon's step-up login, not a refresh", async () => {
    const add = await runCli(home, ['add', 'notes-provider', '--mcp-server', mcp.url]);
    assert.equal(add.code, 0, add.stderr);
    const shown: URL[] = [];
    const walks: Promise<unknown>[] = [];
    const provider = new KeywardOAuthProvider('notes-provider', {
      socketPath: home.socket,
      pollMs: 50,
      onAuthorizationUrl: (url) => {
        shown.push(url);
        walks.push(as.completeAuthorization(url.href));
      },
    });
    const transport = () => new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider });

    // First login: the 401 path.
    await assert.rejects(
      new Client({ name: 'provider-host', version: '1.0.0' }).connect(transport()),
      UnauthorizedError,
    );
    await provider.waitForAuthorization();
    await Promise.all(walks);
    assert.equal(shown.length, 1);
    assert.equal(shown[0]?.searchParams.get('scope'), 'api:read offline_access');

    const sdkTransport = transport();
    const client = new Client({ name: 'provider-host', version: '1.0.0' });
    await client.connect(sdkTransport);
    try {
      assert.equal((await call(client, 'whoami')).scope, 'api:read');

      // The 403: the SDK asks for api:write, the provider starts the daemon's login for the union.
      const refreshes = refreshCount(as);
      await assert.rejects(call(client, 'write-note'), UnauthorizedError);
      assert.equal(shown.length, 2);
      assert.equal(shown[1]?.searchParams.get('scope'), 'api:read offline_access api:write');
      assert.equal(shown[1]?.searchParams.get('resource'), mcp.url);
      assert.equal(refreshCount(as), refreshes, 'a step-up is a login, not a refresh');
      await provider.waitForAuthorization();
      await Promise.all(walks);
      assert.deepEqual(scopes((await call(client, 'write-note')).scope), ['api:read', 'api:write']);
      const tokens = await provider.tokens();
      assert.deepEqual(scopes(tokens?.scope), ['api:read', 'api:write']);
      assert.equal(tokens?.refresh_token, undefined);

      // A rejected token (401 naming api:read, which the token has) is still only refreshed.
      mcp.rejected.add(tokens?.access_token ?? '');
      await assert.rejects(call(client, 'whoami'), UnauthorizedError);
      assert.equal(refreshCount(as), refreshes + 1);
      assert.equal(shown.length, 2);
      await provider.waitForAuthorization();
      assert.equal((await call(client, 'whoami')).sub, 'user-1');

      // finishAuth has nothing to finish: refused before any request reaches the server.
      const tokenRequests = as.events.tokenRequests;
      await assert.rejects(sdkTransport.finishAuth('some-code'), (err: unknown) => {
        assert.ok(err instanceof KeywardError);
        assert.equal(err.code, 'INVALID_REQUEST');
        assert.match(err.message, /waitForAuthorization\(\)/);
        return true;
      });
      assert.equal(as.events.tokenRequests, tokenRequests);
      assert.equal(shown.length, 2);
      assert.deepEqual(as.events.grantErrors, []);
    } finally {
      await client.close();
    }
  });
});
