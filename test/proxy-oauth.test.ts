/**
 * `keyward connect --remote` and `keyward proxy` end to end, against a remote MCP server built
 * with the MCP SDK behind oidc-provider (dynamic registration, rotating refresh tokens with reuse
 * detection, 5-second access tokens). Hosts are the MCP SDK's stdio client running exactly the
 * entry `connect` printed, with the SDK's minimal inherited environment:
 * - connect adds the credential (or reuses it for the same URL, refuses another URL);
 * - the proxy, started before any login, shows the authorization URL on stderr and serves once
 *   the login is done; tools are listed and called; an expiry and a rejected token are crossed;
 *   a 403 `insufficient_scope` becomes a step-up login; `remove` revokes;
 * - three hosts, each with its own proxy, calling concurrently across two expiries: every call
 *   served, one refresh per expiry, no `grant.error`, no token on stderr or in clear on disk.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { KeywardClient } from '../client/index.js';
import { refreshCount } from './fixtures/mcp-login.js';
import { type McpRemoteServer, startMcpRemoteServer } from './fixtures/mcp-remote-server.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  CLI,
  type DaemonProcess,
  filesContaining,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { loginHeadless } from './helpers/oauth-cli.js';
import { type HostEntry, type ProxyHost, startHost } from './helpers/proxy-host.js';

const TTL_S = 5;
const EXPIRY_MARGIN_MS = 100;

/** Calls `name` (default `whoami`) and returns its parsed answer. */
async function whoami(client: Client, name = 'whoami'): Promise<{ sub: string; aud: string; scope: string }> {
  const result = await client.callTool({ name, arguments: {} });
  const content = result.content as Array<{ type: string; text: string }>;
  if (result.isError) throw new Error(content[0]?.text ?? 'tool error');
  return JSON.parse(content[0]?.text ?? 'null');
}

/** Runs `keyward connect <args>` and returns the Claude entry it printed for `server`. */
async function connectEntry(home: TestHome, server: string, args: string[]): Promise<HostEntry> {
  const res = await runCli(home, ['connect', server, ...args]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout).mcpServers[server];
}

/** A host that walks any authorization URL its proxy shows on stderr, as the user would in a browser. */
async function hostWithBrowser(as: OidcServer, entry: HostEntry, shown: string[]): Promise<ProxyHost> {
  let buffered = '';
  const walks: Promise<unknown>[] = [];
  const host = await startHost({ ...entry, args: [...entry.args, '--no-browser'] }, {}, (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('http')) continue;
      shown.push(line);
      walks.push(as.completeAuthorization(line));
    }
  });
  await Promise.all(walks);
  return host;
}

describe('connect --remote and keyward proxy behind oidc-provider', () => {
  let as: OidcServer;
  let mcp: McpRemoteServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  const hosts: ProxyHost[] = [];

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
    for (const host of hosts) await host.close().catch(() => undefined);
    await daemon?.stop();
    await mcp?.close();
    await as?.close();
    home?.cleanup();
  });

  test('connect --remote adds the credential and prints an entry that runs from anywhere', async () => {
    const res = await runCli(home, ['connect', 'notes', '--remote', mcp.url, '--scope', 'api:read']);
    assert.equal(res.code, 0, res.stderr);
    const entry = JSON.parse(res.stdout).mcpServers.notes;
    assert.equal(entry.command, process.execPath);
    assert.deepEqual(entry.args, [CLI, 'proxy', 'notes']);
    // The test daemon is not where a bare environment would look: the entry says where it is.
    assert.deepEqual(entry.env, { KEYWARD_HOME: home.home, KEYWARD_SOCKET: home.socket });
    assert.doesNotMatch(res.stdout, /kwc_|kwa_/);

    const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
    const notes = status.credentials.find((c: { name: string }) => c.name === 'notes');
    assert.equal(notes.mcp_server, mcp.url);
    assert.equal(notes.state, 'needs_login');

    // Same URL again: reused, not added twice; VS Code's shape.
    const again = await runCli(home, ['connect', 'notes', '--remote', mcp.url, '--format', 'vscode']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /using it/);
    assert.deepEqual(JSON.parse(again.stdout).servers.notes, { type: 'stdio', ...entry });

    // Another URL under that name: refused, the credential stays as it was.
    const other = await runCli(home, ['connect', 'notes', '--remote', `${mcp.url}-other`]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^keyward: ALREADY_EXISTS: .*keyward remove notes/m);
    assert.equal(other.stdout, '');
  });

  test('the proxy logs in when needed, then lists and calls tools, across an expiry and a rejected token', async () => {
    const entry = await connectEntry(home, 'notes', ['--remote', mcp.url]);
    const shown: string[] = [];
    const host = await hostWithBrowser(as, entry, shown);
    hosts.push(host);
    assert.equal(shown.length, 1, host.stderr());
    const url = new URL(shown[0] ?? '');
    assert.equal(url.searchParams.get('resource'), mcp.url);

    const { tools } = await host.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['whoami', 'write-note']);
    const me = await whoami(host.client);
    assert.equal(me.sub, 'user-1');
    assert.equal(me.aud, mcp.url);

    // Across an expiry: the daemon refreshes; the host sees nothing.
    const before = refreshCount(as);
    await sleep(TTL_S * 1000 + EXPIRY_MARGIN_MS);
    assert.equal((await whoami(host.client)).sub, 'user-1');
    assert.ok(refreshCount(as) > before);

    // The server rejects the current token: reported, refreshed once, retried; the call succeeds.
    const kw = new KeywardClient({ socketPath: home.socket });
    const current = (await kw.getToken('notes', { minTtl: 0 })).accessToken;
    mcp.rejected.add(current);
    assert.equal((await whoami(host.client)).sub, 'user-1');
    assert.notEqual((await kw.getToken('notes', { minTtl: 0 })).accessToken, current);
    assert.deepEqual(as.events.grantErrors, []);

    for (const token of mcp.stats.tokens) {
      assert.ok(!host.stderr().includes(token), 'a token reached the proxy stderr');
      assert.deepEqual(filesContaining(home.home, token), []);
    }
  });

  test('a 403 insufficient_scope makes the proxy run the step-up login and retry', async () => {
    const entry = await connectEntry(home, 'notes', ['--remote', mcp.url]);
    const shown: string[] = [];
    const host = await hostWithBrowser(as, entry, shown);
    hosts.push(host);
    assert.equal(shown.length, 0, 'already logged in: no login at start');
    const denied = mcp.stats.insufficientScope;
    const note = await whoami(host.client, 'write-note');
    assert.equal(mcp.stats.insufficientScope, denied + 1);
    assert.equal(shown.length, 1, host.stderr());
    assert.deepEqual((new URL(shown[0] ?? '').searchParams.get('scope') ?? '').split(' ').sort(), [
      'api:read',
      'api:write',
    ]);
    assert.deepEqual(note.scope.split(' ').sort(), ['api:read', 'api:write']);
  });

  test('a login the user refuses ends the proxy with exit 5 and nothing on stdout', async () => {
    const entry = await connectEntry(home, 'refused', ['--remote', mcp.url]);
    const child = spawn(entry.command, [...entry.args, '--no-browser'], {
      env: { PATH: process.env.PATH ?? '', ...entry.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let walked: Promise<unknown> | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const url = stderr.split('\n').find((l) => l.startsWith('http'));
      if (url !== undefined && walked === undefined) walked = as.completeAuthorization(url, { deny: true });
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    await walked;
    assert.equal(code, 5, stderr);
    assert.match(stderr, /^keyward: LOGIN_REQUIRED: the login of "refused" failed/m);
    assert.equal(stdout, '');
    child.stdin.end();
  });

  test('remove revokes the grant at the server', async () => {
    const res = await runCli(home, ['remove', 'notes']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /revoked/);
    const proxy = await runCli(home, ['proxy', 'notes']);
    assert.equal(proxy.code, 4);
  });
});

describe('three hosts, each with its own keyward proxy, across two expiries', () => {
  let as: OidcServer;
  let mcp: McpRemoteServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  const hosts: ProxyHost[] = [];
  const HOSTS = 3;
  const CALLS_PER_HOST = 3;

  before(async () => {
    as = await startOidcServer({ accessTokenTtl: TTL_S, rotateRefreshToken: true });
    mcp = await startMcpRemoteServer(as);
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    for (const host of hosts) await host.close().catch(() => undefined);
    await daemon?.stop();
    await mcp?.close();
    await as?.close();
    home?.cleanup();
  });

  test('every call served, one refresh per expiry, no grant.error, no token in the clear', async () => {
    const entry = await connectEntry(home, 'shared', ['--remote', mcp.url]);
    const login = await loginHeadless(home, as, 'shared');
    assert.equal(login.code, 0, login.stderr);
    for (let i = 0; i < HOSTS; i++)
      hosts.push(await startHost({ ...entry, args: [...entry.args, '--no-browser'] }));

    const wave = async () => {
      const results = await Promise.allSettled(
        hosts.flatMap((h) => Array.from({ length: CALLS_PER_HOST }, () => whoami(h.client))),
      );
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      return { calls: results.length, failed: failed.map((f) => String(f.reason).slice(0, 200)) };
    };
    const warm = await wave();
    assert.deepEqual(warm.failed, []);

    const kw = new KeywardClient({ socketPath: home.socket });
    const refreshesPerExpiry: number[] = [];
    for (let round = 0; round < 2; round++) {
      const current = await kw.getToken('shared', { minTtl: 0 });
      assert.ok(current.expiresAt !== null);
      const start = refreshCount(as);
      await sleep(Math.max(0, current.expiresAt.getTime() - Date.now()) + EXPIRY_MARGIN_MS);
      const outcome = await wave();
      assert.equal(outcome.calls, HOSTS * CALLS_PER_HOST);
      assert.deepEqual(outcome.failed, []);
      refreshesPerExpiry.push(refreshCount(as) - start);
    }
    assert.deepEqual(refreshesPerExpiry, [1, 1]);
    assert.deepEqual(as.events.grantErrors, []);
    assert.equal(mcp.stats.unauthorized.invalid, 0);

    assert.ok(mcp.stats.tokens.size >= 3);
    for (const token of mcp.stats.tokens) {
      for (const host of hosts) assert.ok(!host.stderr().includes(token), 'a token reached a proxy stderr');
      assert.deepEqual(filesContaining(home.home, token), []);
    }
  });
});
