// Registration (validation, discovery, presets), client credentials, revocation, timeouts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { SECRET_FIELDS } from '../daemon/oauth/oauth-config.js';
import { Secret } from '../daemon/secret.js';
import type { AddOAuthRequest } from '../shared/protocol.js';
import { startOAuthHarness } from './fixtures/oauth-harness.js';

const base: AddOAuthRequest = { name: 'x', kind: 'oauth', client_id: 'c' };

test('registration is validated at the boundary', async (t) => {
  const h = await startOAuthHarness(t);
  const reject = (req: Partial<AddOAuthRequest>, code: string, pattern: RegExp) =>
    assert.rejects(
      h.service.prepareCredential({ ...base, ...req } as AddOAuthRequest),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, code);
        assert.match(err.message, pattern);
        return true;
      },
    );
  await reject({ issuer: h.server.issuer, client_id: undefined }, 'INVALID_REQUEST', /client_id/);
  await reject({}, 'INVALID_REQUEST', /exactly one/);
  await reject({ issuer: h.server.issuer, provider: 'github' }, 'INVALID_REQUEST', /exactly one/);
  await reject({ issuer: 'http://auth.example.com' }, 'INVALID_REQUEST', /https/);
  await reject({ issuer: 'https://user:pw@auth.example.com' }, 'INVALID_REQUEST', /credentials/);
  await reject({ provider: 'myspace' }, 'INVALID_REQUEST', /known providers: github/);
  await reject({ token_url: 'https://a.example/token', grant: 'device_code' }, 'INVALID_REQUEST', /device/);
  await reject({ authorization_url: 'https://a.example/auth' }, 'INVALID_REQUEST', /token-url/);
  await reject({ issuer: h.server.issuer, grant: 'client_credentials' }, 'INVALID_REQUEST', /client secret/);
  await reject({ issuer: h.server.issuer, scope: 'a "b"' }, 'INVALID_REQUEST', /scope/);
  await reject(
    { issuer: h.server.issuer, resource: 'http://api.example.com/' },
    'INVALID_REQUEST',
    /resource/,
  );
});

test('discovery fills the endpoints; the client secret goes to secrets only', async (t) => {
  const h = await startOAuthHarness(t);
  const secret = Secret.fromString('s3cret-value');
  const prepared = await h.service.prepareCredential(
    {
      ...base,
      issuer: h.server.issuer,
      scope: 'api:read  api:read openid',
      resource: `${h.server.issuer}/mcp`,
    },
    secret,
  );
  assert.equal(prepared.config.issuer, h.server.issuer);
  assert.equal(prepared.config.token_endpoint, `${h.server.issuer}/token`);
  assert.equal(prepared.config.device_authorization_endpoint, `${h.server.issuer}/device/auth`);
  assert.equal(prepared.config.revocation_endpoint, `${h.server.issuer}/token/revocation`);
  assert.equal(prepared.config.iss_parameter_supported, true);
  assert.equal(prepared.config.token_endpoint_auth_method, 'client_secret_basic');
  assert.equal(prepared.config.scope, 'api:read openid');
  assert.equal(prepared.config.grant, 'authorization_code');
  assert.equal(prepared.state.state, 'needs_login');
  assert.equal(prepared.secrets[SECRET_FIELDS.clientSecret], secret);
  assert.ok(!JSON.stringify(prepared).includes('s3cret-value'));
});

test('discovery failures: unreachable is UPSTREAM_UNAVAILABLE, no metadata is UPSTREAM_ERROR', async (t) => {
  const h = await startOAuthHarness(t, { timings: { requestTimeoutMs: 500 } });
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  await assert.rejects(h.service.prepareCredential({ ...base, issuer: `http://127.0.0.1:${port}` }), {
    code: 'UPSTREAM_UNAVAILABLE',
  });
  await assert.rejects(h.service.prepareCredential({ ...base, issuer: `${h.server.issuer}/nothing-here` }), {
    code: 'UPSTREAM_ERROR',
  });
});

test('presets carry endpoints and refresh-token quirks', async (t) => {
  const h = await startOAuthHarness(t);
  const secret = () => Secret.fromString('s');
  const github = await h.service.prepareCredential({ ...base, provider: 'github', scope: 'repo' }, secret());
  assert.equal(github.config.token_endpoint, 'https://github.com/login/oauth/access_token');
  assert.equal(github.config.token_endpoint_auth_method, 'client_secret_post');
  // GitHub's grant API is not RFC 7009: the preset describes the call, naming the client in the path.
  assert.equal(github.config.revocation_endpoint, 'https://api.github.com/applications/c/grant');
  const microsoft = await h.service.prepareCredential(
    { ...base, provider: 'microsoft', scope: 'User.Read' },
    secret(),
  );
  assert.equal(microsoft.config.scope, 'User.Read offline_access');
  assert.equal(microsoft.config.exact_issuer, false);
  const atlassian = await h.service.prepareCredential({ ...base, provider: 'atlassian' }, secret());
  assert.equal(atlassian.config.scope, 'offline_access');
  const notion = await h.service.prepareCredential({ ...base, provider: 'notion' }, secret());
  assert.equal(notion.config.token_endpoint_auth_method, 'client_secret_basic');
  const google = await h.service.prepareCredential(
    { ...base, provider: 'google', grant: 'device_code' },
    secret(),
  );
  assert.equal(google.config.device_authorization_endpoint, 'https://oauth2.googleapis.com/device/code');
  // Explicit endpoints with a public client.
  const explicit = await h.service.prepareCredential({
    ...base,
    authorization_url: 'https://a.example/auth',
    token_url: 'https://a.example/token',
  });
  assert.equal(explicit.config.token_endpoint_auth_method, 'none');
  assert.equal(explicit.config.issuer, null);
  assert.deepEqual(explicit.secrets, {});
});

test('Google and Atlassian presets add the authorization parameters they need for a refresh token', async (t) => {
  const h = await startOAuthHarness(t);
  for (const [provider, expected] of [
    ['google', { access_type: 'offline', prompt: 'consent' }],
    ['atlassian', { audience: 'api.atlassian.com', prompt: 'consent' }],
  ] as const) {
    const prepared = await h.service.prepareCredential(
      { ...base, name: provider, provider },
      Secret.fromString('s'),
    );
    h.vault.insertCredential({ name: provider, kind: 'oauth', ...prepared });
    const started = await h.service.startLogin(provider, 'authorization_code');
    assert.ok('authorization_url' in started);
    const url = new URL(started.authorization_url);
    for (const [key, value] of Object.entries(expected)) assert.equal(url.searchParams.get(key), value);
  }
});

test('client credentials: no login, a token on demand, a new grant at expiry', async (t) => {
  const h = await startOAuthHarness(t);
  const record = await h.add('svc', { grant: 'client_credentials', scope: 'api:read' });
  assert.equal(h.service.describe(record).state, 'ready');
  await assert.rejects(h.service.startLogin('svc', 'authorization_code'), { code: 'INVALID_REQUEST' });

  const first = await h.service.getToken('svc', 1);
  const claims = await h.server.verifyAccessToken(first.access_token);
  assert.equal(claims.client_id, h.server.clients.confidential.client_id);
  assert.equal(claims.scope, 'api:read');
  assert.equal((await h.service.getToken('svc', 1)).access_token, first.access_token);
  h.clock.offsetMs = 6_000;
  const results = await Promise.all(Array.from({ length: 20 }, () => h.service.getToken('svc', 60)));
  assert.equal(new Set(results.map((r) => r.access_token)).size, 1);
  assert.equal(h.server.events.grantSuccess.client_credentials, 2);
});

test('revoke ends the grant at the server (RFC 7009) and drops the tokens', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  const record = h.vault.getCredential('api');
  assert.ok(record);
  const refreshToken = h.vault.readSecret(record, SECRET_FIELDS.refreshToken)?.reveal() ?? '';

  assert.equal(await h.service.revoke('api'), true);
  const after = h.vault.getCredential('api');
  assert.ok(after);
  assert.equal(h.vault.readSecret(after, SECRET_FIELDS.refreshToken), undefined);
  assert.equal(h.vault.readSecret(after, SECRET_FIELDS.accessToken), undefined);
  assert.equal(h.service.describe(after).state, 'needs_login');

  // The server no longer honours the refresh token.
  const issuer = new URL(h.server.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
  const client = { client_id: h.server.clients.confidential.client_id };
  const auth = oauth.ClientSecretBasic(h.server.clients.confidential.client_secret);
  const res = await oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, opts);
  await assert.rejects(oauth.processRefreshTokenResponse(as, client, res), { error: 'invalid_grant' });

  // Nothing left to revoke.
  assert.equal(await h.service.revoke('api'), false);
});

test('revoke without a revocation endpoint returns false and keeps the tokens', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  h.vault.updateCredential('api', { config: { revocation_endpoint: null } });
  assert.equal(await h.service.revoke('api'), false);
  assert.ok(h.vault.readSecret(h.vault.getCredential('api') as never, SECRET_FIELDS.refreshToken));
});

test('every upstream call has a timeout: a held token request is abandoned and retried', async (t) => {
  const h = await startOAuthHarness(t, {
    timings: { requestTimeoutMs: 200, backoff: { baseMs: 10, capMs: 20 }, retryAttempts: 2 },
  });
  await h.add('svc', { grant: 'client_credentials', scope: 'api:read' });
  // Held past the timeout and then refused, so the abandoned request leaves no grant behind.
  h.server.injectTokenFailures(1, { delayMs: 600, status: 503 });
  const started = Date.now();
  const token = await h.service.getToken('svc', 60);
  assert.ok(Date.now() - started < 600, 'the held request was not abandoned');
  assert.equal((await h.server.verifyAccessToken(token.access_token)).scope, 'api:read');
});

test('unknown names, API keys and bad arguments are refused', async (t) => {
  const h = await startOAuthHarness(t);
  await assert.rejects(h.service.getToken('nope', 60), { code: 'NOT_FOUND' });
  await assert.rejects(h.service.startLogin('nope', 'authorization_code'), { code: 'NOT_FOUND' });
  h.vault.insertCredential({
    name: 'key',
    kind: 'api_key',
    config: {},
    secrets: { api_key: Secret.fromString('k') },
  });
  await assert.rejects(h.service.getToken('key', 60), { code: 'INVALID_REQUEST' });
  await h.add('api');
  await assert.rejects(h.service.getToken('api', -1), { code: 'INVALID_REQUEST' });
  await assert.rejects(h.service.invalidate('api', ''), { code: 'INVALID_REQUEST' });
  await assert.rejects(h.service.invalidate('api', 'whatever'), { code: 'LOGIN_REQUIRED' });
});
