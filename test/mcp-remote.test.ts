/**
 * A remote MCP server built with the real MCP SDK and protected by oidc-provider (RFC 9728
 * metadata, dynamic registration on, rotating refresh tokens with reuse detection, 5-second access
 * tokens), reached by real SDK clients:
 * - `keyward add --mcp-server` discovers and registers, `keyward login` logs in with `resource`;
 * - an SDK client whose transport uses `keywardFetch` lists the tools and calls one;
 * - five concurrent clients across an expiry cause one refresh and no `grant.error`;
 * - the same five clients with the SDK's own (file-backed) provider, each refreshing by itself,
 *   against the same server: what happens is recorded, not asserted (it depends on timing).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { KeywardClient, KeywardOAuthProvider, keywardFetch } from '../client/mcp.js';
import { FileOAuthProvider, startRedirectCatcher } from './fixtures/mcp-file-provider.js';
import { loginHeadless, refreshCount } from './fixtures/mcp-login.js';
import { type McpRemoteServer, startMcpRemoteServer } from './fixtures/mcp-remote-server.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const TTL_S = 5;
/** How long after an expiry a wave of calls starts. */
const EXPIRY_MARGIN_MS = 100;

/** Connects an SDK client to `url` through keyward's fetch. */
async function keywardConnected(url: string, socketPath: string, credential: string): Promise<Client> {
  const client = new Client({ name: 'test-host', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: keywardFetch(credential, { client: new KeywardClient({ socketPath }) }),
  });
  await client.connect(transport);
  return client;
}

/** Calls `whoami` and returns its parsed answer. */
async function whoami(client: Client): Promise<{ sub: string; aud: string; scope: string }> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const content = result.content as Array<{ type: string; text: string }>;
  return JSON.parse(content[0]?.text ?? 'null');
}

/** What one wave of concurrent tool calls came to at the server and the authorization server. */
interface WaveOutcome {
  calls: number;
  failed: number;
  refreshes: number;
  grantErrors: string[];
  /** Failure messages, de-duplicated. */
  errors: string[];
}

/** Calls `whoami` once on every client at the same time and counts what happened upstream. */
async function wave(as: OidcServer, clients: Client[]): Promise<WaveOutcome> {
  const refreshesBefore = refreshCount(as);
  const errorsBefore = as.events.grantErrors.length;
  const results = await Promise.allSettled(clients.map((c) => whoami(c)));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  return {
    calls: results.length,
    failed: failures.length,
    refreshes: refreshCount(as) - refreshesBefore,
    grantErrors: as.events.grantErrors.slice(errorsBefore).map((e) => `${e.error}: ${e.detail}`),
    errors: [...new Set(failures.map((f) => String((f.reason as Error)?.message ?? f.reason).slice(0, 120)))],
  };
}

/** Merges outcomes: `refreshes` and `grantErrors` count the whole window, not just the calls. */
function windowOutcome(as: OidcServer, start: { refreshes: number; errors: number }, w: WaveOutcome) {
  return {
    ...w,
    refreshes: refreshCount(as) - start.refreshes,
    grantErrors: as.events.grantErrors.slice(start.errors).map((e) => `${e.error}: ${e.detail}`),
  };
}

/** Marks where a measurement window starts. */
function mark(as: OidcServer): { refreshes: number; errors: number } {
  return { refreshes: refreshCount(as), errors: as.events.grantErrors.length };
}

const CLIENTS = 5;

describe('remote MCP server behind oidc-provider', () => {
  let as: OidcServer;
  let mcp: McpRemoteServer;
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    as = await startOidcServer({ accessTokenTtl: TTL_S });
    mcp = await startMcpRemoteServer(as);
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await daemon?.stop();
    await mcp?.close();
    await as?.close();
    home?.cleanup();
  });

  test('add --mcp-server discovers, registers dynamically, and login sends resource', async () => {
    const add = await runCli(home, ['add', 'remote', '--mcp-server', mcp.url, '--json']);
    assert.equal(add.code, 0, add.stderr);
    const entry = JSON.parse(add.stdout);
    assert.equal(entry.issuer, as.issuer);
    assert.equal(entry.state, 'needs_login');
    // oidc-provider lists offline_access: asked for, or it would issue no refresh token by default.
    assert.equal(entry.scope, 'api:read offline_access');

    const first = await loginHeadless(home, as, 'remote');
    assert.equal(first.code, 0, first.stderr);
    const url = new URL(first.url ?? '');
    assert.equal(url.searchParams.get('resource'), mcp.url);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.equal(url.searchParams.get('prompt'), 'consent');
    const clientId = url.searchParams.get('client_id');
    assert.ok(clientId !== null && !Object.values(as.clients).some((c) => c.client_id === clientId));

    // A second login reuses the registration and its registered redirect port.
    const second = await loginHeadless(home, as, 'remote');
    assert.equal(second.code, 0, second.stderr);
    const again = new URL(second.url ?? '');
    assert.equal(again.searchParams.get('client_id'), clientId);
    assert.equal(again.searchParams.get('redirect_uri'), url.searchParams.get('redirect_uri'));
  });

  test('an SDK client using keywardFetch lists the tools and calls one', async () => {
    const client = await keywardConnected(mcp.url, home.socket, 'remote');
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((t) => t.name),
        ['whoami'],
      );
      const me = await whoami(client);
      assert.equal(me.sub, 'user-1');
      assert.equal(me.aud, mcp.url);
      assert.equal(me.scope, 'api:read');
    } finally {
      await client.close();
    }
  });

  test('keywardFetch reports a rejected token and retries once with the fresh one', async () => {
    const kw = new KeywardClient({ socketPath: home.socket });
    const client = await keywardConnected(mcp.url, home.socket, 'remote');
    try {
      const current = (await kw.getToken('remote')).accessToken;
      const before = refreshCount(as);
      mcp.rejected.add(current);
      const me = await whoami(client);
      assert.equal(me.sub, 'user-1');
      assert.equal(refreshCount(as) - before, 1);
      assert.notEqual((await kw.getToken('remote')).accessToken, current);
      assert.deepEqual(as.events.grantErrors, []);
    } finally {
      await client.close();
    }
  });

  test('KeywardOAuthProvider: the daemon logs in, tokens() has no refresh token, a 401 refreshes', async (t) => {
    // Its own authorization server and MCP server, so that no other credential's refresh counts here.
    const as = await startOidcServer({ accessTokenTtl: TTL_S });
    const mcp = await startMcpRemoteServer(as);
    t.after(async () => {
      await mcp.close();
      await as.close();
    });
    const add = await runCli(home, ['add', 'remote-provider', '--mcp-server', mcp.url]);
    assert.equal(add.code, 0, add.stderr);
    const shown: URL[] = [];
    const walks: Promise<unknown>[] = [];
    const provider = new KeywardOAuthProvider('remote-provider', {
      socketPath: home.socket,
      pollMs: 50,
      onAuthorizationUrl: (url) => {
        shown.push(url);
        walks.push(as.completeAuthorization(url.href));
      },
    });
    assert.equal(await provider.tokens(), undefined);

    // Never logged in: the SDK meets a 401 and the provider starts the daemon's own login.
    const first = new Client({ name: 'provider-host', version: '1.0.0' });
    await assert.rejects(
      first.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider })),
      UnauthorizedError,
    );
    assert.equal(shown.length, 1);
    assert.equal(shown[0]?.searchParams.get('resource'), mcp.url);
    assert.match(shown[0]?.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    await provider.waitForAuthorization();
    await Promise.all(walks);

    const tokens = await provider.tokens();
    assert.ok(tokens?.access_token);
    assert.equal(tokens.refresh_token, undefined);
    assert.equal(Object.hasOwn(tokens, 'refresh_token'), false);

    const client = new Client({ name: 'provider-host', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
    try {
      assert.equal((await whoami(client)).sub, 'user-1');

      // The server rejects the token: the provider reports it, the daemon refreshes once, and no
      // second login starts. The SDK fails that one call (it only knows REDIRECT), the next works.
      const before = refreshCount(as);
      mcp.rejected.add(tokens.access_token);
      await assert.rejects(whoami(client), UnauthorizedError);
      assert.equal(refreshCount(as) - before, 1);
      assert.equal(shown.length, 1);
      await provider.waitForAuthorization();
      assert.equal((await whoami(client)).sub, 'user-1');
      assert.throws(() =>
        provider.saveTokens({ access_token: 'x', token_type: 'Bearer', refresh_token: 'y' }),
      );
    } finally {
      await client.close();
      await runCli(home, ['remove', 'remote-provider']);
    }
  });

  test('five concurrent keyward clients across an expiry: one refresh, no grant.error', async (t) => {
    const kw = new KeywardClient({ socketPath: home.socket });
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () => keywardConnected(mcp.url, home.socket, 'remote')),
    );
    try {
      const warm = await wave(as, clients);
      assert.equal(warm.failed, 0, warm.errors.join('; '));

      // Across the expiry of a token in use: whatever refreshes (the daemon ahead of time, or the
      // first caller after), it happens once for all five. Start from a fresh token so the
      // window is the same every run.
      const acrossExpiry = async () => {
        const current = await kw.getToken('remote', { minTtl: 0 });
        const fresh = await kw.invalidate('remote', current.accessToken);
        assert.ok(fresh.expiresAt !== null);
        const start = mark(as);
        await sleep(Math.max(0, fresh.expiresAt.getTime() - Date.now()) + EXPIRY_MARGIN_MS);
        return windowOutcome(as, start, await wave(as, clients));
      };
      const first = await acrossExpiry();
      assert.equal(first.failed, 0, first.errors.join('; '));
      assert.equal(first.refreshes, 1);
      assert.deepEqual(first.grantErrors, []);

      // And the grant is still alive one expiry later.
      const second = await acrossExpiry();
      assert.equal(second.failed, 0, second.errors.join('; '));
      assert.equal(second.refreshes, 1);
      assert.deepEqual(second.grantErrors, []);
      t.diagnostic(`keyward: ${JSON.stringify({ first, second })}`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      // Removing it stops the daemon's proactive refreshes, which would count in the next test.
      await runCli(home, ['remove', 'remote']);
    }
  });

  test("the same five clients with the SDK's own file-backed provider: outcome recorded", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-sdk-'));
    const file = path.join(dir, 'mcp-oauth.json');
    const catcher = await startRedirectCatcher();
    t.after(async () => {
      await catcher.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    // Log in the way the SDK does it: 401, discovery, registration, redirect, finishAuth(code).
    let authorizationUrl: URL | undefined;
    const loginProvider = new FileOAuthProvider(file, catcher.redirectUrl, (url) => {
      authorizationUrl = url;
    });
    const loginTransport = new StreamableHTTPClientTransport(new URL(mcp.url), {
      authProvider: loginProvider,
    });
    const loginClient = new Client({ name: 'sdk-host', version: '1.0.0' });
    await assert.rejects(loginClient.connect(loginTransport), UnauthorizedError);
    assert.ok(authorizationUrl !== undefined);
    const code = catcher.nextCode();
    await as.completeAuthorization(authorizationUrl.href);
    await loginTransport.finishAuth(await code);
    const loggedInAt = Date.now();
    assert.ok(loginProvider.tokens()?.refresh_token, 'the SDK keeps a refresh token');

    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const client = new Client({ name: 'sdk-host', version: '1.0.0' });
        const provider = new FileOAuthProvider(file, catcher.redirectUrl);
        await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
        return client;
      }),
    );
    try {
      const warm = await wave(as, clients);
      assert.equal(warm.failed, 0, warm.errors.join('; '));

      const start = mark(as);
      await sleep(Math.max(0, loggedInAt + TTL_S * 1000 - Date.now()) + EXPIRY_MARGIN_MS);
      const first = windowOutcome(as, start, await wave(as, clients));

      const next = mark(as);
      await sleep(TTL_S * 1000 + EXPIRY_MARGIN_MS);
      const second = windowOutcome(as, next, await wave(as, clients));
      t.diagnostic(`SDK file provider: ${JSON.stringify({ first, second })}`);
      // Recorded, not asserted: how many of the five race depends on timing. What always holds:
      // every call was made, and a reused refresh token is what oidc-provider reports, if anything.
      assert.equal(first.calls, CLIENTS);
      for (const error of [...first.grantErrors, ...second.grantErrors]) assert.match(error, /invalid_grant/);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test('discovery falls back to the well-known path when the 401 names no metadata', async () => {
    const quiet = await startMcpRemoteServer(as, { challenge: false });
    try {
      const add = await runCli(home, ['add', 'quiet', '--mcp-server', quiet.url, '--json']);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(JSON.parse(add.stdout).issuer, as.issuer);
      assert.equal(quiet.stats.unauthorized.missing, 1);
    } finally {
      await quiet.close();
    }
  });

  test('discovery refuses a server without PKCE S256, metadata for another resource, an unprotected server', async () => {
    const noPkce = await startMcpRemoteServer(as, { authorizationServer: 'no-pkce' });
    const other = await startMcpRemoteServer(as, { resource: 'http://127.0.0.1:1/elsewhere' });
    try {
      const refused = await runCli(home, ['add', 'no-pkce', '--mcp-server', noPkce.url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^keyward: UPSTREAM_ERROR: .*S256/m);
      const impostor = await runCli(home, ['add', 'impostor', '--mcp-server', other.url]);
      assert.equal(impostor.code, 1);
      assert.match(impostor.stderr, /^keyward: UPSTREAM_ERROR: .*another resource/m);
      const status = await runCli(home, ['status', '--json']);
      const names = JSON.parse(status.stdout).credentials.map((c: { name: string }) => c.name);
      assert.ok(!names.includes('no-pkce') && !names.includes('impostor'));
      // A server that needs no token (here: an event stream that never ends) has no metadata.
      const open = http.createServer((req, res) => {
        if (req.method === 'POST')
          res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': hi\n\n');
        else res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
      const started = Date.now();
      const unprotected = await runCli(home, [
        'add',
        'open',
        '--mcp-server',
        `http://127.0.0.1:${(open.address() as AddressInfo).port}/mcp`,
      ]);
      open.closeAllConnections();
      open.close();
      assert.equal(unprotected.code, 1);
      assert.match(
        unprotected.stderr,
        /^keyward: UPSTREAM_ERROR: .*publishes no protected resource metadata/m,
      );
      assert.ok(Date.now() - started < 5000, 'the probe does not wait on the stream');

      const remote = await runCli(home, ['add', 'far', '--mcp-server', 'http://example.com/mcp']);
      assert.equal(remote.code, 2);
      assert.match(remote.stderr, /INVALID_REQUEST: mcp_server must use https/);
    } finally {
      await noPkce.close();
      await other.close();
    }
  });
});
