/**
 * The example stdio MCP server (examples/mcp-stdio-server.ts) end to end with the real MCP SDK:
 * SDK clients spawn it with `KEYWARD_SOCKET` in its environment and call its tool; the tool's
 * upstream call carries a keyward token that verifies at a resource server behind oidc-provider
 * (JWKS, audience, expiry). Across token expiries the calls keep working, and however many tool
 * calls run at once, the authorization server sees one refresh per expiry and no `grant.error`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { KeywardClient } from '../client/index.js';
import { loginHeadless, refreshCount } from './fixtures/mcp-login.js';
import { type ResourceServer, startResourceServer } from './fixtures/mcp-resource-server.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  REPO_ROOT,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const TTL_S = 5;
const EXAMPLE = path.join(REPO_ROOT, 'dist', 'examples', 'mcp-stdio-server.js');
/** Example servers spawned, and tool calls each runs at once. */
const SERVERS = 2;
const CALLS_PER_SERVER = 10;

interface ToolResult {
  isError?: boolean;
  content: Array<{ type: string; text: string }>;
}

describe('example stdio MCP server with a keyward token', () => {
  let as: OidcServer;
  let api: ResourceServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  const clients: Client[] = [];

  /** Spawns the example the way an MCP host does, with only the variables it documents. */
  const spawnExample = async (): Promise<Client> => {
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [EXAMPLE],
      env: { KEYWARD_SOCKET: home.socket, KEYWARD_CREDENTIAL: 'api', API_URL: api.url },
      stderr: 'pipe',
    });
    await client.connect(transport);
    clients.push(client);
    return client;
  };

  const call = async (client: Client): Promise<{ sub: string; scope: string }> => {
    const result = (await client.callTool({ name: 'whoami', arguments: {} })) as ToolResult;
    assert.notEqual(result.isError, true, result.content[0]?.text);
    return JSON.parse(result.content[0]?.text ?? 'null');
  };

  before(async () => {
    as = await startOidcServer({ accessTokenTtl: TTL_S });
    api = await startResourceServer(as);
    home = makeHome();
    daemon = await startDaemon(home);
    const add = await runCli(home, [
      'add',
      'api',
      '--oauth',
      '--issuer',
      as.issuer,
      '--client-id',
      as.clients.public.client_id,
      '--scope',
      'api:read',
    ]);
    assert.equal(add.code, 0, add.stderr);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await daemon?.stop();
    await api?.close();
    await as?.close();
    home?.cleanup();
  });

  test('before login the tool says what to do; after it, the upstream call verifies', async () => {
    const client = await spawnExample();
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ['whoami'],
    );
    const before = (await client.callTool({ name: 'whoami', arguments: {} })) as ToolResult;
    assert.equal(before.isError, true);
    assert.match(before.content[0]?.text ?? '', /LOGIN_REQUIRED.*keyward login api/);
    assert.equal(api.stats.ok, 0);

    const login = await loginHeadless(home, as, 'api');
    assert.equal(login.code, 0, login.stderr);
    const me = await call(client);
    assert.deepEqual(me, { sub: 'user-1', scope: 'api:read' });
    assert.equal(api.stats.ok, 1);
  });

  test('across expiries, concurrent tool calls keep working with one refresh per expiry', async (t) => {
    while (clients.length < SERVERS) await spawnExample();
    const kw = new KeywardClient({ socketPath: home.socket });
    const windows: Array<{ calls: number; refreshes: number }> = [];
    for (let round = 0; round < 2; round += 1) {
      // Start each window from a fresh token so every window spans one expiry the same way.
      const current = await kw.getToken('api', { minTtl: 0 });
      const fresh = await kw.invalidate('api', current.accessToken);
      assert.ok(fresh.expiresAt !== null);
      const refreshesBefore = refreshCount(as);
      const tokensBefore = api.stats.tokens.length;
      await sleep(Math.max(0, fresh.expiresAt.getTime() - Date.now()) + 100);

      const results = await Promise.all(
        clients.flatMap((c) => Array.from({ length: CALLS_PER_SERVER }, () => call(c))),
      );
      assert.equal(results.length, SERVERS * CALLS_PER_SERVER);
      assert.ok(results.every((r) => r.sub === 'user-1'));
      const refreshes = refreshCount(as) - refreshesBefore;
      assert.equal(refreshes, 1, 'one refresh for the whole expiry');
      assert.equal(
        api.stats.tokens.length - tokensBefore,
        1,
        'every call after the expiry used the one new token',
      );
      windows.push({ calls: results.length, refreshes });
    }
    assert.deepEqual(as.events.grantErrors, []);
    assert.equal(api.stats.unauthorized, 0);
    t.diagnostic(`example: ${JSON.stringify(windows)}`);
  });
});
