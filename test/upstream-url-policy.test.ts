/**
 * Untrusted metadata (issue 12 item 7). URLs in a remote server's answers (RFC 9728 metadata, RFC
 * 8414 metadata, the registration endpoint) are the server's word: a public MCP server must not be
 * able to point keyward's requests (refresh tokens, client secrets, or just an SSRF probe) at
 * loopback, a private network or a cloud metadata address, nor downgrade them to plain http.
 *
 * No host but loopback is reachable here, so the public server is played by a `fetch` handed to
 * the real discovery code (`prepareMcpCredential`), which records every URL it was asked for; the
 * local case (every other MCP test) runs against real servers through the real daemon.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { ApiError } from '../daemon/api-error.js';
import { loginFailure, sanitizeErrorDescription } from '../daemon/oauth/login-common.js';
import { prepareMcpCredential } from '../daemon/oauth/mcp-discovery.js';
import { authorizationServerMetadataUrls } from '../daemon/oauth/metadata-fetch.js';
import type { OAuthConfig } from '../daemon/oauth/oauth-config.js';
import { UpstreamFailure } from '../daemon/oauth/upstream.js';
import { isPrivateHost, requireUpstreamUrl } from '../daemon/oauth/url-policy.js';

const MCP = 'https://mcp.example.com/mcp';
const AS = 'https://auth.example.com';

/** What the public servers answer; a test overrides one piece to play the attack. */
interface PublicServers {
  challenge?: string;
  authorizationServers?: string[];
  metadata?: Record<string, unknown>;
  metadataPadding?: number;
}

/** Plays mcp.example.com and auth.example.com; returns the fetch and the URLs it was asked for. */
function publicServers(servers: PublicServers = {}) {
  const asked: string[] = [];
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    });
  const fetch = (async (input: string | URL | Request) => {
    const url = String(input);
    asked.push(url);
    if (url === MCP) {
      const challenge =
        servers.challenge ??
        `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`;
      return json(401, { error: 'invalid_token' }, { 'www-authenticate': challenge });
    }
    if (url.startsWith('https://mcp.example.com/.well-known/oauth-protected-resource')) {
      return json(200, { resource: MCP, authorization_servers: servers.authorizationServers ?? [AS] });
    }
    if (url === `${AS}/.well-known/oauth-authorization-server`) {
      return json(200, {
        issuer: AS,
        authorization_endpoint: `${AS}/authorize`,
        token_endpoint: `${AS}/token`,
        registration_endpoint: `${AS}/register`,
        code_challenge_methods_supported: ['S256'],
        ...servers.metadata,
        ...(servers.metadataPadding !== undefined ? { padding: 'x'.repeat(servers.metadataPadding) } : {}),
      });
    }
    if (url === `${AS}/register`) return json(201, { client_id: 'registered-client' });
    return json(404, { error: 'not_found' });
  }) as typeof globalThis.fetch;
  return { ctx: { fetch, timeoutMs: 5000, now: Date.now }, asked };
}

/** Runs discovery for the public MCP server. */
function add(ctx: ReturnType<typeof publicServers>['ctx']) {
  return prepareMcpCredential(ctx, { name: 'public', kind: 'oauth', mcp_server: MCP }, undefined);
}

/** Tells whether a URL targets this machine or a private network. */
const local = (url: string) => isPrivateHost(new URL(url).hostname) || url.startsWith('http:');

test('a public MCP server works when everything it names is public (the control)', async () => {
  const { ctx, asked } = publicServers();
  const prepared = await add(ctx);
  assert.equal(prepared.config.token_endpoint, `${AS}/token`);
  assert.equal(prepared.config.client_id, 'registered-client');
  assert.deepEqual(asked.filter(local), []);
});

test('attack: metadata of a public server pointing endpoints at loopback, private or link-local addresses is refused', async () => {
  const attacks: Array<[string, PublicServers]> = [
    ['token_endpoint on loopback http', { metadata: { token_endpoint: 'http://127.0.0.1:8080/token' } }],
    ['token_endpoint on localhost https', { metadata: { token_endpoint: 'https://localhost/token' } }],
    [
      'token_endpoint on the cloud metadata address',
      { metadata: { token_endpoint: 'https://169.254.169.254/t' } },
    ],
    ['token_endpoint on IPv6 loopback', { metadata: { token_endpoint: 'https://[::1]/token' } }],
    [
      'token_endpoint on a mapped IPv4 loopback',
      { metadata: { token_endpoint: 'https://[::ffff:127.0.0.1]/t' } },
    ],
    [
      'revocation_endpoint on a private network',
      { metadata: { revocation_endpoint: 'https://192.168.1.10/r' } },
    ],
    ['authorization_endpoint on loopback', { metadata: { authorization_endpoint: 'http://127.0.0.1:1/a' } }],
    [
      'registration_endpoint on a private network',
      { metadata: { registration_endpoint: 'https://10.0.0.7/reg' } },
    ],
    ['an authorization server on loopback', { authorizationServers: ['http://127.0.0.1:9000'] }],
    ['an authorization server on a ULA address', { authorizationServers: ['https://[fd00::1]'] }],
    [
      'resource_metadata in the challenge on a private address',
      { challenge: 'Bearer resource_metadata="https://172.16.0.5/.well-known/oauth-protected-resource"' },
    ],
  ];
  for (const [what, servers] of attacks) {
    const { ctx, asked } = publicServers(servers);
    await assert.rejects(
      add(ctx),
      (err: unknown) => err instanceof ApiError && err.code === 'UPSTREAM_ERROR',
      `${what} must be refused`,
    );
    assert.deepEqual(asked.filter(local), [], `${what}: no request may reach it`);
  }
});

test('authorization server metadata is read with a size cap', async () => {
  const { ctx } = publicServers({ metadataPadding: 300 * 1024 });
  await assert.rejects(
    add(ctx),
    (err: unknown) =>
      err instanceof ApiError && err.code === 'UPSTREAM_ERROR' && /more than 262144 bytes/.test(err.message),
  );
});

test('requireUpstreamUrl: local targets only when the server the user named is local', () => {
  for (const host of [
    '127.0.0.1',
    '127.1.2.3',
    'localhost',
    'a.localhost',
    '10.1.2.3',
    '172.31.0.1',
    '192.168.0.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '[::1]',
    '[::]',
    '[fe80::1]',
    '[fc00::1]',
    '[::ffff:7f00:1]',
  ]) {
    assert.equal(isPrivateHost(host), true, host);
  }
  for (const host of ['example.com', '8.8.8.8', '172.32.0.1', '[2606:4700::1111]', '[::ffff:808:808]']) {
    assert.equal(isPrivateHost(host), false, host);
  }
  assert.equal(
    requireUpstreamUrl('https://auth.example.com/t', 'token_endpoint', MCP),
    'https://auth.example.com/t',
  );
  assert.throws(() => requireUpstreamUrl('http://auth.example.com/t', 'token_endpoint', MCP));
  assert.throws(() => requireUpstreamUrl('http://127.0.0.1:9/t', 'token_endpoint', MCP));
  // A local MCP server (development, and every test here): loopback http stays allowed.
  const localMcp = 'http://127.0.0.1:3000/mcp';
  assert.equal(
    requireUpstreamUrl('http://127.0.0.1:9/t', 'token_endpoint', localMcp),
    'http://127.0.0.1:9/t',
  );
  assert.equal(requireUpstreamUrl('https://10.0.0.1/t', 'token_endpoint', localMcp), 'https://10.0.0.1/t');
  assert.throws(
    () => requireUpstreamUrl('http://10.0.0.1/t', 'token_endpoint', localMcp),
    'plain http only on loopback',
  );
});

test('authorization server metadata locations follow the MCP spec order', () => {
  assert.deepEqual(authorizationServerMetadataUrls('https://auth.example.com/tenant1'), [
    'https://auth.example.com/.well-known/oauth-authorization-server/tenant1',
    'https://auth.example.com/.well-known/openid-configuration/tenant1',
    'https://auth.example.com/tenant1/.well-known/openid-configuration',
  ]);
  assert.deepEqual(authorizationServerMetadataUrls('https://auth.example.com/'), [
    'https://auth.example.com/.well-known/oauth-authorization-server',
    'https://auth.example.com/.well-known/openid-configuration',
  ]);
});

test('a refused login shows the sanitized error_description and a hint that fits the error', () => {
  assert.equal(sanitizeErrorDescription('bad \u001b[31mred\u001b[0m "scope"\n'), "bad [31mred [0m 'scope'");
  assert.equal(sanitizeErrorDescription(`token ${'A'.repeat(40)} rejected`), 'token [...] rejected');
  assert.equal(sanitizeErrorDescription('word '.repeat(100))?.length, 200);
  assert.equal(sanitizeErrorDescription(42), undefined);

  const config = {
    client_id: 'my-client',
    scope: 'files:admin',
    redirect_port: 33333,
  } as OAuthConfig;
  const refused = (error: string, description: string) =>
    loginFailure(
      'files',
      new UpstreamFailure('upstream_error', 'the login of "files" failed (HTTP 400)', {
        oauthError: error,
        description,
        status: 400,
      }),
      config,
    );
  assert.match(refused('invalid_scope', 'unknown scope').message, /"unknown scope".*--scope/);
  assert.match(refused('invalid_client', 'no such client').message, /client "my-client".*--client-id/);
  assert.match(refused('unauthorized_client', 'nope').message, /--client-id/);
  assert.match(
    refused('invalid_request', 'redirect_uri mismatch').message,
    /http:\/\/127\.0\.0\.1:33333\/callback.*--redirect-port/,
  );
  assert.match(refused('invalid_grant', 'x').message, /HTTP 400/);
  const exchange = loginFailure(
    'files',
    new UpstreamFailure('login_required', 'the login of "files" failed (invalid_grant, HTTP 400)', {
      oauthError: 'invalid_grant',
      description: 'redirect_uri did not match',
    }),
    config,
  );
  assert.match(exchange.message, /"redirect_uri did not match"\); .*--redirect-port/);
  const declined = loginFailure(
    'files',
    new oauth.AuthorizationResponseError('denied', {
      cause: new URLSearchParams({ error: 'access_denied', error_description: 'The user said no' }),
    }),
    config,
  );
  assert.equal(declined.code, 'LOGIN_REQUIRED');
  assert.match(declined.message, /\(access_denied: "The user said no"\); the login was declined/);
});
