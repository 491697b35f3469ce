// Provider quirks that oidc-provider cannot produce by itself: a real login against the fixture,
// then the credential is marked as a given provider and the fixture answers the next token
// requests the way that provider does (peers.md "Provider behaviours worth reproducing").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SECRET_FIELDS } from '../daemon/oauth/oauth-config.js';
import type { ProviderName } from '../daemon/oauth/providers.js';
import type { DeviceLoginResponse } from '../shared/protocol.js';
import { type OAuthHarness, startOAuthHarness } from './fixtures/oauth-harness.js';

const FAST_RETRY = { backoff: { baseMs: 10, capMs: 50 }, retryAttempts: 2, retryBudgetMs: 2_000 };

/** A logged-in credential that keyward treats as `provider`'s, with its token expired. */
async function expiredAs(
  t: Parameters<typeof startOAuthHarness>[0],
  provider: ProviderName | null,
): Promise<OAuthHarness> {
  const h = await startOAuthHarness(t, { timings: FAST_RETRY });
  await h.add('cred');
  await h.login('cred');
  if (provider !== null) h.vault.updateCredential('cred', { config: { provider } });
  h.server.resetEvents();
  h.clock.offsetMs = 6_000;
  return h;
}

function status(h: OAuthHarness) {
  return h.service.describe(h.vault.getCredential('cred') as never);
}

test("Slack: HTTP 200 {ok:false, error:'invalid_refresh_token'} means log in again", async (t) => {
  const h = await expiredAs(t, 'slack');
  h.server.injectTokenFailures(1, { status: 200, body: { ok: false, error: 'invalid_refresh_token' } });
  await assert.rejects(h.service.getToken('cred', 60), { code: 'LOGIN_REQUIRED' });
  assert.equal(status(h).state, 'needs_login');
  assert.equal(h.server.events.tokenRequests, 1, 'a dead refresh token is not retried');
});

test("Slack: token_type 'bot' is served as a Bearer token, and the rotated refresh token is stored", async (t) => {
  const h = await expiredAs(t, 'slack');
  const body = {
    ok: true,
    access_token: 'xoxe.xoxb-1',
    token_type: 'bot',
    expires_in: 43_200,
    refresh_token: 'xoxe-1-r2',
  };
  h.server.injectTokenFailures(1, { status: 200, body });
  const token = await h.service.getToken('cred', 60);
  assert.equal(token.access_token, 'xoxe.xoxb-1');
  assert.equal(token.token_type, 'Bearer');
  const record = h.vault.getCredential('cred');
  assert.ok(record);
  assert.equal(h.vault.readSecret(record, SECRET_FIELDS.refreshToken)?.reveal(), 'xoxe-1-r2');
});

test("GitHub: HTTP 200 {error:'bad_refresh_token'} means log in again", async (t) => {
  const h = await expiredAs(t, 'github');
  h.server.injectTokenFailures(1, {
    status: 200,
    body: {
      error: 'bad_refresh_token',
      error_description: 'The refresh token passed is incorrect or expired.',
    },
  });
  await assert.rejects(h.service.getToken('cred', 60), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'LOGIN_REQUIRED');
    assert.doesNotMatch(err.message, /incorrect or expired/, 'response bodies stay out of messages');
    return true;
  });
  assert.equal(status(h).state, 'needs_login');
});

test("GitHub: device polling continues through HTTP 200 {error:'authorization_pending'}", async (t) => {
  const h = await startOAuthHarness(t, { server: { deviceInterval: 0.1 } });
  await h.add('gh', { grant: 'device_code' });
  h.vault.updateCredential('gh', { config: { provider: 'github' } });
  h.server.injectTokenFailures(2, { status: 200, body: { error: 'authorization_pending' } });
  const started = (await h.service.startLogin('gh', 'device_code')) as DeviceLoginResponse;
  const deadline = Date.now() + 5_000;
  while (h.server.events.tokenRequests < 2 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.service.flowStatus(started.flow_id).state, 'pending');
  await h.server.approveDeviceCode(started.user_code);
  assert.equal((await h.waitForFlow(started.flow_id)).state, 'complete');
});

test('Atlassian: a bare HTTP 403 from the token endpoint means log in again', async (t) => {
  const h = await expiredAs(t, 'atlassian');
  h.server.injectTokenFailures(1, { status: 403, body: {} });
  await assert.rejects(h.service.getToken('cred', 60), { code: 'LOGIN_REQUIRED' });
  assert.equal(status(h).state, 'needs_login');
});

test('the same bare 403 from a generic server is an upstream error, not a lost grant', async (t) => {
  const h = await expiredAs(t, null);
  h.server.injectTokenFailures(1, { status: 403, body: {} });
  await assert.rejects(h.service.getToken('cred', 60), { code: 'UPSTREAM_ERROR' });
  assert.equal(status(h).state, 'error');
  assert.ok(h.vault.readSecret(h.vault.getCredential('cred') as never, SECRET_FIELDS.refreshToken));
});

test('Notion: no expires_in means no expiry; the token is refreshed only on invalidate', async (t) => {
  const h = await expiredAs(t, 'notion');
  const answer = (n: number) => ({
    status: 200,
    body: { access_token: `ntn_${n}`, token_type: 'bearer', refresh_token: `nrt_${n}`, bot_id: 'b' },
  });
  h.server.injectTokenFailures(1, answer(1));
  const first = await h.service.getToken('cred', 60);
  assert.equal(first.access_token, 'ntn_1');
  assert.equal(first.expires_at, null);
  h.clock.offsetMs = 365 * 24 * 3600 * 1000;
  assert.equal((await h.service.getToken('cred', 3600)).access_token, 'ntn_1');
  assert.equal(h.server.events.tokenRequests, 1);
  h.server.injectTokenFailures(1, answer(2));
  assert.equal((await h.service.invalidate('cred', 'ntn_1')).access_token, 'ntn_2');
  assert.equal((await h.service.invalidate('cred', 'ntn_1')).access_token, 'ntn_2'); // stale: no refresh
  assert.equal(h.server.events.tokenRequests, 2);
  assert.equal(status(h).expires_at, null);
});

test('Microsoft: an ID token from an unknowable tenant issuer is ignored, not fatal', async (t) => {
  const h = await expiredAs(t, 'microsoft');
  h.vault.updateCredential('cred', { config: { exact_issuer: false } });
  const body = { access_token: 'ms-at', token_type: 'Bearer', expires_in: 3600, id_token: 'not.a.jwt' };
  h.server.injectTokenFailures(1, { status: 200, body });
  assert.equal((await h.service.getToken('cred', 60)).access_token, 'ms-at');
});

test('malformed answers are UPSTREAM_ERROR: a bad ID token, no token, an unknown token type, too much', async (t) => {
  const h = await expiredAs(t, null);
  const answers = [
    {
      status: 200,
      body: { access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: 'not.a.jwt' },
    },
    { status: 200, body: { token_type: 'Bearer' } },
    { status: 200, body: { access_token: 'at', token_type: 'N_A' } },
    { status: 200, body: { access_token: 'x'.repeat(1_100_000), token_type: 'Bearer' } }, // over 1 MiB
  ];
  for (const answer of answers) {
    h.server.injectTokenFailures(1, answer);
    await assert.rejects(h.service.getToken('cred', 60), { code: 'UPSTREAM_ERROR' });
  }
  assert.equal(status(h).state, 'error');
  assert.equal(status(h).last_error?.code, 'UPSTREAM_ERROR');
  // The refresh token was never given up: the next (real) refresh works.
  const token = await h.service.getToken('cred', 60);
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
  assert.equal(status(h).state, 'ready');
});

test('429 with Retry-After is waited out and retried', async (t) => {
  const h = await expiredAs(t, null);
  h.server.injectTokenFailures(1, { status: 429, body: { error: 'slow_down' }, retryAfter: 1 });
  const started = Date.now();
  const token = await h.service.getToken('cred', 60);
  assert.ok(Date.now() - started >= 950, 'Retry-After was not honoured');
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
});
