/**
 * Client identity against the MCP SDK's own authorization server (`mcpAuthRouter` with the SDK's
 * `DemoInMemoryAuthProvider`, unmodified), which matches redirect URIs exactly, port included:
 * - what keyward registered before (a port-less `http://127.0.0.1/callback`) is refused at
 *   authorization with "Unregistered redirect_uri", and keyward says so with a --redirect-port hint;
 * - `add --mcp-server` now registers a concrete port, kept with the credential; headless login,
 *   a token, and an SDK client calling a tool through `keywardFetch` all work, twice;
 * - `--redirect-port N` registers that port; a port held by another process at login is reported
 *   with the fix.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { KeywardClient, keywardFetch } from '../client/mcp.js';
import { type SdkAuthServer, startSdkAuthServer } from './fixtures/sdk-auth-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { loginHeadless } from './helpers/oauth-cli.js';

/** Finds a free loopback port (bound, read, released). */
async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the MCP SDK's mcpAuthRouter with its demo provider", () => {
  let sdk: SdkAuthServer;
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    sdk = await startSdkAuthServer();
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await daemon?.stop();
    await sdk?.close();
    home?.cleanup();
  });

  test('a port-less loopback registration is refused at authorization, with a --redirect-port hint', async () => {
    // What keyward registered before: any port was meant to match (RFC 8252 §7.3); this server
    // compares exactly.
    const clientId = await sdk.register({
      client_name: 'keyward (port-less)',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const add = await runCli(home, ['add', 'portless', '--mcp-server', sdk.mcpUrl, '--client-id', clientId]);
    assert.equal(add.code, 0, add.stderr);
    const login = await loginHeadless(home, sdk, 'portless');
    assert.equal(login.code, 1, login.stderr);
    assert.match(
      login.stderr,
      /^keyward: UPSTREAM_ERROR: login failed: the authorization server refused the login \(invalid_request: "Unregistered redirect_uri"\); .*--redirect-port/m,
    );
    assert.doesNotMatch(login.stderr, /check the scope and client id/);
  });

  test('add --mcp-server registers a concrete redirect port; login, token and a tool call work', async () => {
    const add = await runCli(home, ['add', 'sdk', '--mcp-server', sdk.mcpUrl, '--json']);
    assert.equal(add.code, 0, add.stderr);
    const entry = JSON.parse(add.stdout);
    assert.equal(entry.issuer, sdk.issuer);
    assert.equal(entry.scope, 'mcp:tools');

    const first = await loginHeadless(home, sdk, 'sdk');
    assert.equal(first.code, 0, first.stderr);
    const url = new URL(first.url ?? '');
    const redirect = url.searchParams.get('redirect_uri') ?? '';
    assert.match(redirect, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.equal(url.searchParams.get('resource'), sdk.mcpUrl);
    assert.equal(url.searchParams.get('prompt'), null, 'no offline_access listed, so no prompt');

    const token = await runCli(home, ['token', 'sdk']);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^[0-9a-f-]{36}\n$/);

    // Every later login listens on the same registered port.
    const second = await loginHeadless(home, sdk, 'sdk');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(new URL(second.url ?? '').searchParams.get('redirect_uri'), redirect);

    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(sdk.mcpUrl), {
        fetch: keywardFetch('sdk', { client: new KeywardClient({ socketPath: home.socket }) }),
      }),
    );
    try {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const me = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? 'null');
      assert.equal(me.clientId, url.searchParams.get('client_id'));
      assert.deepEqual(me.scopes, ['mcp:tools']);
      assert.equal(me.resource, sdk.mcpUrl);
    } finally {
      await client.close();
    }

    // A process holding the registered port: the login fails at once and says what to do.
    const port = Number(new URL(redirect).port);
    const squatter = http.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const busy = await runCli(home, ['login', 'sdk', '--no-browser']);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(busy.stderr, new RegExp(`127\\.0\\.0\\.1:${port} of "sdk" is in use by another process`));
      assert.match(busy.stderr, /lsof -nP -iTCP:\d+ -sTCP:LISTEN/);
      assert.match(busy.stderr, /--redirect-port/);
      assert.equal(busy.stdout, '', 'no authorization URL for a login that cannot finish');
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
    const again = await loginHeadless(home, sdk, 'sdk');
    assert.equal(again.code, 0, again.stderr);

    // A login that supersedes a pending one takes over the same port.
    const route = '/v1/credentials/sdk/login';
    const pending = await socketRequest(home.socket, 'POST', route, { body: { flow: 'authorization_code' } });
    assert.equal(pending.status, 200, pending.text);
    const newer = await socketRequest(home.socket, 'POST', route, { body: { flow: 'authorization_code' } });
    assert.equal(newer.status, 200, newer.text);
    assert.equal(new URL(newer.body.authorization_url).searchParams.get('redirect_uri'), redirect);
    const landing = await sdk.completeAuthorization(newer.body.authorization_url);
    assert.equal(landing.status, 200, landing.body);
    const flows = await Promise.all(
      [pending, newer].map(
        async (f) => (await socketRequest(home.socket, 'GET', `/v1/flows/${f.body.flow_id}`)).body,
      ),
    );
    assert.equal(flows[0].state, 'failed');
    assert.equal(flows[1].state, 'complete');
  });

  test('--redirect-port picks the registered port', async () => {
    const port = await freePort();
    const add = await runCli(home, [
      'add',
      'sdk-port',
      '--mcp-server',
      sdk.mcpUrl,
      '--redirect-port',
      String(port),
    ]);
    assert.equal(add.code, 0, add.stderr);
    const login = await loginHeadless(home, sdk, 'sdk-port');
    assert.equal(login.code, 0, login.stderr);
    assert.equal(
      new URL(login.url ?? '').searchParams.get('redirect_uri'),
      `http://127.0.0.1:${port}/callback`,
    );
    for (const bad of ['80', '70000', 'x']) {
      const refused = await runCli(home, [
        'add',
        'bad-port',
        '--mcp-server',
        sdk.mcpUrl,
        '--redirect-port',
        bad,
      ]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /--redirect-port must be a port number from 1024 to 65535/);
    }
  });
});
