// Interactive logins against oidc-provider: the authorization code flow with PKCE through the
// daemon's loopback listener, driven headlessly, and the device authorization grant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthorizationCodeLoginResponse, DeviceLoginResponse } from '../shared/protocol.js';
import { HeadlessBrowser } from './fixtures/headless-browser.js';
import { startOAuthHarness } from './fixtures/oauth-harness.js';

/** The fixture adds `interval` to device answers; 0.2 s keeps polling tests quick. */
const FAST_DEVICE = { server: { deviceInterval: 0.2 } };

async function startCodeLogin(
  service: { startLogin(name: string, flow: 'authorization_code'): Promise<unknown> },
  name: string,
): Promise<AuthorizationCodeLoginResponse> {
  return (await service.startLogin(name, 'authorization_code')) as AuthorizationCodeLoginResponse;
}

/** Fetches a URL and reports whether anything is listening. */
async function listening(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

test('authorization code + PKCE: a headless login completes and the token verifies against the JWKS', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await assert.rejects(h.service.getToken('api', 60), { code: 'LOGIN_REQUIRED' });

  const started = await startCodeLogin(h.service, 'api');
  const url = new URL(started.authorization_url);
  assert.equal(url.origin, h.server.issuer);
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.ok((url.searchParams.get('state') ?? '').length >= 20);
  assert.equal(url.searchParams.get('scope'), 'openid api:read');
  const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
  assert.equal(redirect.hostname, '127.0.0.1');
  assert.equal(redirect.pathname, '/callback');
  assert.deepEqual(h.service.flowStatus(started.flow_id), { state: 'pending' });

  const page = await h.server.completeAuthorization(started.authorization_url);
  assert.equal(page.status, 200);
  assert.match(page.body, /Logged in/);
  assert.deepEqual(await h.waitForFlow(started.flow_id), { state: 'complete' });
  assert.equal(await listening(redirect.href), false, 'the loopback listener must close when done');

  const token = await h.service.getToken('api', 1);
  assert.equal(token.token_type, 'Bearer');
  // The scope the server granted this (resource-bound) token, not the one asked for.
  assert.equal(token.scope, 'api:read');
  const claims = await h.server.verifyAccessToken(token.access_token);
  assert.equal(claims.sub, 'user-1');
  assert.equal(claims.client_id, h.server.clients.confidential.client_id);

  const status = h.service.describe(h.vault.getCredential('api') as never);
  assert.equal(status.state, 'ready');
  assert.equal(status.grant, 'authorization_code');
  assert.equal(status.issuer, h.server.issuer);
  assert.equal(status.expires_at, token.expires_at);
  assert.ok(status.last_refresh_at !== null);
  assert.equal(status.last_error, null);
  assert.deepEqual(h.server.events.grantErrors, []);
});

test('a public client (no secret, PKCE only) logs in and refreshes', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('pub', {}, { publicClient: true });
  await h.login('pub');
  h.clock.offsetMs = 6_000;
  const token = await h.service.getToken('pub', 60);
  assert.equal(
    (await h.server.verifyAccessToken(token.access_token)).client_id,
    h.server.clients.public.client_id,
  );
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
});

test('resource (RFC 8707) is sent in the authorization and token requests: the audience follows it', async (t) => {
  const h = await startOAuthHarness(t);
  const resource = `${h.server.issuer}/mcp`;
  await h.add('mcp', { resource });
  const started = await startCodeLogin(h.service, 'mcp');
  assert.equal(new URL(started.authorization_url).searchParams.get('resource'), resource);
  await h.server.completeAuthorization(started.authorization_url);
  assert.equal((await h.waitForFlow(started.flow_id)).state, 'complete');
  const first = await h.service.getToken('mcp', 1);
  assert.equal((await h.server.verifyAccessToken(first.access_token, resource)).aud, resource);
  h.clock.offsetMs = 6_000;
  const refreshed = await h.service.getToken('mcp', 60);
  assert.equal((await h.server.verifyAccessToken(refreshed.access_token, resource)).aud, resource);
});

test('a denied login fails the flow with LOGIN_REQUIRED and tells the browser', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  const started = await startCodeLogin(h.service, 'api');
  const page = await h.server.completeAuthorization(started.authorization_url, { deny: true });
  assert.equal(page.status, 400);
  assert.match(page.body, /Login failed/);
  const status = await h.waitForFlow(started.flow_id);
  assert.equal(status.state, 'failed');
  assert.equal(status.error?.code, 'LOGIN_REQUIRED');
  assert.match(status.error?.message ?? '', /access_denied/);
});

test('a redirect with the wrong state is refused and the flow keeps waiting for the real one', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  const started = await startCodeLogin(h.service, 'api');
  const redirectUri = new URL(started.authorization_url).searchParams.get('redirect_uri') ?? '';
  const forged = await new HeadlessBrowser().request(`${redirectUri}?code=x&state=forged`);
  assert.equal(forged.status, 400);
  assert.deepEqual(h.service.flowStatus(started.flow_id), { state: 'pending' });
  await h.server.completeAuthorization(started.authorization_url);
  assert.equal((await h.waitForFlow(started.flow_id)).state, 'complete');
});

test('RFC 9207: an authorization response with another issuer fails the login', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  const started = await startCodeLogin(h.service, 'api');
  // Walk to the redirect without delivering it, then deliver it as a mix-up attacker would.
  const last = await new HeadlessBrowser().follow(started.authorization_url, (next) =>
    next.startsWith(h.server.issuer),
  );
  const callback = new URL(last.location ?? '');
  assert.equal(callback.searchParams.get('iss'), h.server.issuer);
  callback.searchParams.set('iss', 'https://evil.example');
  const page = await new HeadlessBrowser().request(callback.href);
  assert.equal(page.status, 400);
  const status = await h.waitForFlow(started.flow_id);
  assert.equal(status.state, 'failed');
  assert.equal(status.error?.code, 'UPSTREAM_ERROR');
  assert.equal(h.server.events.grantSuccess.authorization_code, undefined, 'the code must not be redeemed');
});

test('the loopback listener times out and closes', async (t) => {
  const h = await startOAuthHarness(t, { timings: { loginTimeoutMs: 150 } });
  await h.add('api');
  const started = await startCodeLogin(h.service, 'api');
  const status = await h.waitForFlow(started.flow_id);
  assert.equal(status.state, 'failed');
  assert.match(status.error?.message ?? '', /did not come back/);
  const redirectUri = new URL(started.authorization_url).searchParams.get('redirect_uri') ?? '';
  assert.equal(await listening(redirectUri), false);
});

test('one flow per credential: a new login supersedes the pending one', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  const first = await startCodeLogin(h.service, 'api');
  const second = await startCodeLogin(h.service, 'api');
  const firstStatus = h.service.flowStatus(first.flow_id);
  assert.equal(firstStatus.state, 'failed');
  assert.match(firstStatus.error?.message ?? '', /superseded/);
  const firstRedirect = new URL(first.authorization_url).searchParams.get('redirect_uri') ?? '';
  assert.equal(await listening(firstRedirect), false);
  await h.server.completeAuthorization(second.authorization_url);
  assert.equal((await h.waitForFlow(second.flow_id)).state, 'complete');
  assert.throws(() => h.service.flowStatus('no-such-flow'), { code: 'NOT_FOUND' });
});

test('device grant: polls through authorization_pending, then stores a token that verifies', async (t) => {
  const h = await startOAuthHarness(t, FAST_DEVICE);
  await h.add('dev', { grant: 'device_code' });
  const started = (await h.service.startLogin('dev', 'device_code')) as DeviceLoginResponse;
  assert.match(started.user_code, /\S/);
  assert.ok(started.verification_uri.startsWith(h.server.issuer));
  assert.match(started.verification_uri_complete ?? '', /user_code=/);
  assert.ok(Date.parse(started.expires_at) > Date.now());
  // Let one poll see authorization_pending before the user approves.
  const deadline = Date.now() + 5_000;
  while (h.server.events.tokenRequests === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.service.flowStatus(started.flow_id).state, 'pending');
  assert.equal(h.server.events.grantErrors[0]?.error, 'authorization_pending');
  await h.server.approveDeviceCode(started.user_code);
  assert.deepEqual(await h.waitForFlow(started.flow_id), { state: 'complete' });
  const token = await h.service.getToken('dev', 1);
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
  assert.equal(h.server.events.grantSuccess['urn:ietf:params:oauth:grant-type:device_code'], 1);
  // A device-grant credential refreshes like any other.
  h.clock.offsetMs = 6_000;
  await h.service.getToken('dev', 60);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
});

test('device grant: a denial fails the flow with access_denied', async (t) => {
  const h = await startOAuthHarness(t, FAST_DEVICE);
  await h.add('dev', { grant: 'device_code' });
  const started = (await h.service.startLogin('dev', 'device_code')) as DeviceLoginResponse;
  await h.server.denyDeviceCode(started.user_code);
  const status = await h.waitForFlow(started.flow_id);
  assert.equal(status.state, 'failed');
  assert.equal(status.error?.code, 'LOGIN_REQUIRED');
  assert.match(status.error?.message ?? '', /access_denied/);
});

test('device grant: slow_down adds 5 s to the interval; expired_token ends the flow', async (t) => {
  const h = await startOAuthHarness(t, FAST_DEVICE);
  await h.add('dev', { grant: 'device_code' });
  h.server.injectTokenFailures(1, { status: 400, body: { error: 'expired_token' } });
  const started = (await h.service.startLogin('dev', 'device_code')) as DeviceLoginResponse;
  const status = await h.waitForFlow(started.flow_id);
  assert.equal(status.state, 'failed');
  assert.match(status.error?.message ?? '', /expired/);

  h.server.resetEvents();
  h.server.injectTokenFailures(1, { status: 400, body: { error: 'slow_down' } });
  const slowed = (await h.service.startLogin('dev', 'device_code')) as DeviceLoginResponse;
  const deadline = Date.now() + 5_000;
  while (h.server.events.tokenRequests === 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const firstPoll = Date.now();
  await h.server.approveDeviceCode(slowed.user_code);
  // The next poll waits 0.2 + 5 s instead of 0.2 s, so nothing more arrives for a while.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(h.server.events.tokenRequests, 1, `polled again after ${Date.now() - firstPoll} ms`);
  assert.equal(h.service.flowStatus(slowed.flow_id).state, 'pending');
});

test('closing the service fails pending logins, closes their listeners, and lets an in-flight refresh commit', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  await h.add('other');
  const pending = await startCodeLogin(h.service, 'other');
  h.clock.offsetMs = 6_000;
  h.server.injectTokenFailures(1, { delayMs: 300 }); // hold the refresh, then let it through
  const refreshing = h.service.getToken('api', 60);
  await new Promise((r) => setTimeout(r, 50));
  await h.service.close();
  const token = await refreshing; // committed, not abandoned
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  const status = h.service.flowStatus(pending.flow_id);
  assert.equal(status.state, 'failed');
  assert.match(status.error?.message ?? '', /keyward login other/);
  const redirectUri = new URL(pending.authorization_url).searchParams.get('redirect_uri') ?? '';
  assert.equal(await listening(redirectUri), false);
  await assert.rejects(h.service.getToken('api', 60), { code: 'UPSTREAM_UNAVAILABLE' });
});
