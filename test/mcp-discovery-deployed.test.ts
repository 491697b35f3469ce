/**
 * Discovery as deployed servers answer it, against oidc-provider (a real, certified authorization
 * server) and the SDK-built MCP server fixture, through the real daemon and CLI:
 * - the path-specific RFC 9728 location answering a WAF's 403 or a CDN's 502, with a 401 that names
 *   no `resource_metadata`: keyward moves on to the root location;
 * - an issuer with a path whose metadata is only at the OpenID Connect path-insertion location
 *   (the RFC 8414 location answers 403, the path-appended one 404): found, and login works;
 * - oidc-provider at its default refresh-token policy (a refresh token only with `offline_access`,
 *   which it drops without `prompt=consent`): keyward asks for both, and refreshes after expiry;
 * - `--no-resource` leaves `resource` out of the authorization and token requests;
 * - an `https` `--client-id` is a Client ID Metadata Document: no registration, and oidc-provider
 *   (which advertises `client_id_metadata_document_supported`) fetches it and logs the user in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeywardClient } from '../client/index.js';
import { refreshCount } from './fixtures/mcp-login.js';
import { startMcpRemoteServer } from './fixtures/mcp-remote-server.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { loginHeadless } from './helpers/oauth-cli.js';

describe('discovery as deployed', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  const servers: Array<{ close(): Promise<void> }> = [];

  /** Starts an authorization server that is closed after the suite. */
  async function authorizationServer(options: Parameters<typeof startOidcServer>[0]): Promise<OidcServer> {
    const as = await startOidcServer(options);
    servers.push(as);
    return as;
  }

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
  });

  after(async () => {
    await daemon?.stop();
    for (const server of servers.reverse()) await server.close();
    home?.cleanup();
  });

  test('protected resource metadata: past a 403 or 502 at the path-specific location to the root', async () => {
    const as = await authorizationServer({});
    for (const status of [403, 502]) {
      const mcp = await startMcpRemoteServer(as, { challenge: false, pathMetadataStatus: status });
      servers.push(mcp);
      const add = await runCli(home, ['add', `waf-${status}`, '--mcp-server', mcp.url, '--json']);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(JSON.parse(add.stdout).issuer, as.issuer);
      assert.equal(mcp.stats.unauthorized.missing, 1, 'the 401 challenge was asked for first');
    }
  });

  test('an issuer with a path, found only by OpenID Connect path insertion, logs in', async () => {
    const as = await authorizationServer({ mountPath: '/tenant' });
    assert.ok(as.issuer.endsWith('/tenant'));
    const mcp = await startMcpRemoteServer(as);
    servers.push(mcp);
    // The front really answers as described: no metadata at the other two locations.
    const origin = new URL(as.issuer).origin;
    assert.equal((await fetch(`${origin}/.well-known/oauth-authorization-server/tenant`)).status, 403);
    assert.equal((await fetch(`${as.issuer}/.well-known/openid-configuration`)).status, 404);

    const add = await runCli(home, ['add', 'tenant', '--mcp-server', mcp.url, '--json']);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(JSON.parse(add.stdout).issuer, as.issuer);
    const login = await loginHeadless(home, as, 'tenant');
    assert.equal(login.code, 0, login.stderr);
    const token = await new KeywardClient({ socketPath: home.socket }).getToken('tenant');
    const claims = await as.verifyAccessToken(token.accessToken, mcp.url);
    assert.equal(claims.iss, as.issuer);
  });

  test("offline_access with prompt=consent: a refresh token from oidc-provider's default policy", async () => {
    const as = await authorizationServer({ refreshTokenPolicy: 'default', accessTokenTtl: 3 });
    const mcp = await startMcpRemoteServer(as);
    servers.push(mcp);
    const add = await runCli(home, ['add', 'offline', '--mcp-server', mcp.url, '--json']);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(JSON.parse(add.stdout).scope, 'api:read offline_access');
    const login = await loginHeadless(home, as, 'offline');
    assert.equal(login.code, 0, login.stderr);
    const url = new URL(login.url ?? '');
    assert.deepEqual(url.searchParams.get('scope')?.split(' ').sort(), ['api:read', 'offline_access']);
    assert.equal(url.searchParams.get('prompt'), 'consent');

    // Cross an expiry: only a refresh token can bring a fresh access token now.
    const kw = new KeywardClient({ socketPath: home.socket });
    const first = await kw.getToken('offline', { minTtl: 0 });
    assert.ok(first.expiresAt !== null);
    await sleep(Math.max(0, first.expiresAt.getTime() - Date.now()) + 200);
    const fresh = await kw.getToken('offline');
    assert.notEqual(fresh.accessToken, first.accessToken);
    assert.ok(refreshCount(as) >= 1, 'the fresh token came from a refresh');
    assert.deepEqual(as.events.grantErrors, []);
    const claims = await as.verifyAccessToken(fresh.accessToken, mcp.url);
    assert.equal(claims.scope, 'api:read');

    // An explicit --scope is taken as meant: no offline_access, no prompt.
    const own = await runCli(home, [
      'add',
      'own-scope',
      '--mcp-server',
      mcp.url,
      '--scope',
      'api:read',
      '--json',
    ]);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(JSON.parse(own.stdout).scope, 'api:read');
  });

  test('--no-resource sends no resource in the authorization or the token request', async () => {
    const as = await authorizationServer({});
    const mcp = await startMcpRemoteServer(as);
    servers.push(mcp);
    const add = await runCli(home, ['add', 'entra-like', '--mcp-server', mcp.url, '--no-resource']);
    assert.equal(add.code, 0, add.stderr);
    const login = await loginHeadless(home, as, 'entra-like');
    assert.equal(login.code, 0, login.stderr);
    assert.equal(new URL(login.url ?? '').searchParams.has('resource'), false);
    // oidc-provider gives a request without resource its default audience; with one in the token
    // request it would have been the MCP server's.
    const token = await new KeywardClient({ socketPath: home.socket }).getToken('entra-like');
    const claims = await as.verifyAccessToken(token.accessToken, as.resource);
    assert.equal(claims.aud, as.resource);
  });

  test('an https --client-id is a Client ID Metadata Document: no registration, and login works', async () => {
    const documentUrl = 'https://client.keyward.example/oauth/client.json';
    const as = await authorizationServer({
      clientIdMetadataDocuments: {
        [documentUrl]: {
          client_id: documentUrl,
          client_name: 'keyward',
          application_type: 'native',
          redirect_uris: ['http://127.0.0.1/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        },
      },
    });
    const metadata = (await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(metadata.client_id_metadata_document_supported, true);
    const mcp = await startMcpRemoteServer(as);
    servers.push(mcp);
    const add = await runCli(home, ['add', 'cimd', '--mcp-server', mcp.url, '--client-id', documentUrl]);
    assert.equal(add.code, 0, add.stderr);
    const login = await loginHeadless(home, as, 'cimd');
    assert.equal(login.code, 0, login.stderr);
    assert.equal(new URL(login.url ?? '').searchParams.get('client_id'), documentUrl);
    const token = await new KeywardClient({ socketPath: home.socket }).getToken('cimd');
    const claims = await as.verifyAccessToken(token.accessToken, mcp.url);
    assert.equal(claims.client_id, documentUrl);

    const withSecret = await runCli(
      home,
      ['add', 'cimd-secret', '--mcp-server', mcp.url, '--client-id', documentUrl, '--client-secret-stdin'],
      { input: 's3cret' },
    );
    assert.equal(withSecret.code, 2, withSecret.stderr);
    assert.match(withSecret.stderr, /Client ID Metadata Document client has no client secret/);
  });
});
