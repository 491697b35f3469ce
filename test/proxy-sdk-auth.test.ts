/**
 * `keyward proxy` in front of the MCP SDK's own servers (test/fixtures/sdk-auth-server.ts:
 * `mcpAuthRouter` with the SDK's `DemoInMemoryAuthProvider`, unmodified, which matches redirect
 * URIs exactly, port included): `connect --remote` registers a concrete loopback port, an MCP host
 * starts the printed entry, the proxy logs in headlessly on that port, and the host lists and calls
 * a tool. The demo provider issues no refresh tokens, so no expiry is crossed here (the
 * workers-oauth-provider and oidc-provider tests do that).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type SdkAuthServer, startSdkAuthServer } from './fixtures/sdk-auth-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { type HostEntry, type ProxyHost, startHost } from './helpers/proxy-host.js';
import { startHostWithLogin } from './helpers/proxy-login.js';

describe("keyward proxy in front of the MCP SDK's demo authorization server", () => {
  let sdk: SdkAuthServer;
  let home: TestHome;
  let daemon: DaemonProcess;
  let host: ProxyHost | undefined;

  before(async () => {
    sdk = await startSdkAuthServer();
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await host?.close().catch(() => {});
    await daemon?.stop();
    await sdk?.close();
    home?.cleanup();
  });

  test('connect --remote, the proxy logs in headlessly, the host lists and calls a tool', async () => {
    const connect = await runCli(home, ['connect', 'sdk', '--remote', sdk.mcpUrl]);
    assert.equal(connect.code, 0, connect.stderr);
    const entry = (JSON.parse(connect.stdout) as { mcpServers: Record<string, HostEntry> }).mcpServers.sdk;
    assert.ok(entry !== undefined, connect.stdout);

    const walks: Array<{ status: number; body: string }> = [];
    const started = await startHostWithLogin(entry, sdk.issuer, async (url) => {
      walks.push(await sdk.completeAuthorization(url));
    });
    host = started.host;
    // The demo provider redirected (it refuses an unregistered redirect URI with a 400 instead),
    // and keyward's listener on the registered port took the code.
    assert.equal(walks.length, 1);
    assert.equal(walks[0]?.status, 200, walks[0]?.body);
    const redirect = started.authorizationUrl.searchParams.get('redirect_uri') ?? '';
    assert.match(redirect, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);

    const { tools } = await host.client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ['whoami'],
    );
    const result = await host.client.callTool({ name: 'whoami', arguments: {} });
    const me = JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? 'null') as {
      clientId: string;
      resource: string;
    };
    assert.equal(me.clientId, started.authorizationUrl.searchParams.get('client_id'));
    assert.equal(me.resource, sdk.mcpUrl);
    assert.ok(!host.stderr().includes('Bearer'), 'the proxy printed an Authorization header');
  });

  test('a second host starts the same entry and is served without another login', async () => {
    const connect = await runCli(home, ['connect', 'sdk', '--remote', sdk.mcpUrl]);
    assert.equal(connect.code, 0, connect.stderr);
    assert.match(connect.stderr, /exists/);
    const entry = (JSON.parse(connect.stdout) as { mcpServers: Record<string, HostEntry> }).mcpServers.sdk;
    assert.ok(entry !== undefined);
    const second = await startHost(entry);
    try {
      const result = await second.client.callTool({ name: 'whoami', arguments: {} });
      assert.notEqual(result.isError, true);
      assert.doesNotMatch(second.stderr(), /log in/);
    } finally {
      await second.close();
    }
  });
});
