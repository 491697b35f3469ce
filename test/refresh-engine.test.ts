// The refresh engine against a real authorization server (oidc-provider with rotation and reuse
// detection on, 5 s access tokens). Reuse detection is the oracle: two refreshes racing on one
// refresh token make the server revoke the whole grant and record a grant.error, so "one
// refresh reached the server and zero grant errors" proves the engine serialised and persisted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SECRET_FIELDS } from '../daemon/oauth/oauth-config.js';
import { startOAuthHarness } from './fixtures/oauth-harness.js';

const FAST_RETRY = { backoff: { baseMs: 20, capMs: 100 }, retryAttempts: 3, retryBudgetMs: 5_000 };

test('100 concurrent callers after expiry cause exactly one refresh, and all get the new token', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  const before = await h.service.getToken('api', 1);
  h.server.resetEvents();

  h.clock.offsetMs = 6_000; // past the 5 s lifetime
  const results = await Promise.all(Array.from({ length: 100 }, () => h.service.getToken('api', 60)));

  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  assert.deepEqual(h.server.events.grantErrors, []);
  const tokens = new Set(results.map((r) => r.access_token));
  assert.equal(tokens.size, 1);
  const [fresh] = tokens;
  assert.notEqual(fresh, before.access_token);
  assert.equal((await h.server.verifyAccessToken(fresh as string)).sub, 'user-1');
  // Served with a new expiry in the shifted clock's future.
  assert.ok(Date.parse(results[0]?.expires_at ?? '') > Date.now() + h.clock.offsetMs);
});

test('a token with enough life left is served from the vault without reaching the server', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  h.server.resetEvents();
  const a = await h.service.getToken('api', 1);
  const b = await h.service.getToken('api', 2);
  assert.equal(a.access_token, b.access_token);
  assert.equal(h.server.events.tokenRequests, 0);
  // min_ttl beyond half the lifetime is capped at lifetime/2 (2.5 s of 5 s): 3 s left is enough
  // for min_ttl 60, 2 s left is not.
  h.leave(a.expires_at, 3_000);
  assert.equal((await h.service.getToken('api', 60)).access_token, a.access_token);
  h.leave(a.expires_at, 2_000);
  const refreshed = await h.service.getToken('api', 60);
  assert.notEqual(refreshed.access_token, a.access_token);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
});

test('invalidate with the current token refreshes once; 20 stale reports cause no refresh', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  const first = await h.service.getToken('api', 1);
  h.server.resetEvents();

  const second = await h.service.invalidate('api', first.access_token);
  assert.notEqual(second.access_token, first.access_token);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);

  const stale = await Promise.all(
    Array.from({ length: 20 }, () => h.service.invalidate('api', first.access_token)),
  );
  for (const r of stale) assert.equal(r.access_token, second.access_token);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  assert.deepEqual(h.server.events.grantErrors, []);
});

test('concurrent invalidations of the current token share one refresh', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  const current = await h.service.getToken('api', 1);
  h.server.resetEvents();
  const results = await Promise.all(
    Array.from({ length: 20 }, () => h.service.invalidate('api', current.access_token)),
  );
  assert.equal(new Set(results.map((r) => r.access_token)).size, 1);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  assert.deepEqual(h.server.events.grantErrors, []);
});

test('the rotated refresh token is persisted: after a restart past expiry, refresh still works', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  const rt0 = h.vault.readSecret(h.vault.getCredential('api') as never, SECRET_FIELDS.refreshToken)?.reveal();
  h.clock.offsetMs = 6_000;
  await h.service.getToken('api', 60); // rotates rt0 → rt1
  const rt1 = h.vault.readSecret(h.vault.getCredential('api') as never, SECRET_FIELDS.refreshToken)?.reveal();
  assert.ok(rt0 && rt1);
  assert.notEqual(rt1, rt0);

  await h.restart();
  h.clock.offsetMs = 12_000;
  h.server.resetEvents();
  const after = await h.service.getToken('api', 60);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  assert.deepEqual(h.server.events.grantErrors, []); // rt0 was never presented again
  assert.equal((await h.server.verifyAccessToken(after.access_token)).sub, 'user-1');
});

test('a server that does not rotate (Google-like): the old refresh token is kept', async (t) => {
  const h = await startOAuthHarness(t, { server: { rotateRefreshToken: false } });
  await h.add('api');
  await h.login('api');
  const read = () =>
    h.vault.readSecret(h.vault.getCredential('api') as never, SECRET_FIELDS.refreshToken)?.reveal();
  const rt = read();
  for (const offset of [6_000, 12_000]) {
    h.clock.offsetMs = offset;
    await h.service.getToken('api', 60);
  }
  assert.equal(read(), rt);
  assert.equal(h.server.events.grantSuccess.refresh_token, 2);
});

test('injected 503s are retried transparently, honouring Retry-After', async (t) => {
  const h = await startOAuthHarness(t, { timings: FAST_RETRY });
  await h.add('api');
  await h.login('api');
  h.server.resetEvents();
  h.server.injectTokenFailures(2, { status: 503, retryAfter: 0 });
  h.clock.offsetMs = 6_000;
  const token = await h.service.getToken('api', 60);
  assert.equal(h.server.events.tokenRequests, 3);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
  assert.equal(h.service.describe(h.vault.getCredential('api') as never).state, 'ready');
  assert.equal(h.service.describe(h.vault.getCredential('api') as never).last_error, null);
});

test('while the old token is valid, a transient failure serves it and records the error', async (t) => {
  const h = await startOAuthHarness(t, { timings: FAST_RETRY });
  await h.add('api');
  await h.login('api');
  const old = await h.service.getToken('api', 1);
  h.server.resetEvents();
  h.server.injectTokenFailures(1, { status: 500, body: { error: 'server_error' } });
  h.leave(old.expires_at, 1_500); // below min_ttl 60 (capped at 2.5 s), still valid
  const served = await h.service.getToken('api', 60);
  assert.equal(served.access_token, old.access_token);
  assert.equal(h.server.events.tokenRequests, 1);
  const status = h.service.describe(h.vault.getCredential('api') as never);
  assert.equal(status.state, 'ready');
  assert.equal(status.last_error?.code, 'UPSTREAM_UNAVAILABLE');
  // Callers right behind it are served the old token too, without another upstream attempt.
  assert.equal((await h.service.getToken('api', 60)).access_token, old.access_token);
  assert.equal(h.server.events.tokenRequests, 1);
  // Once the backoff has passed, the next call refreshes for real and clears the error.
  await sleep(FAST_RETRY.backoff.capMs + 50);
  const fresh = await h.service.getToken('api', 60);
  assert.notEqual(fresh.access_token, old.access_token);
  assert.equal(h.service.describe(h.vault.getCredential('api') as never).last_error, null);
});

test('failures that outlast the retries give UPSTREAM_UNAVAILABLE and state error, shared by all callers', async (t) => {
  const h = await startOAuthHarness(t, { timings: FAST_RETRY });
  await h.add('api');
  await h.login('api');
  h.server.resetEvents();
  h.server.injectTokenFailures(10, { status: 503 });
  h.clock.offsetMs = 6_000;
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => h.service.getToken('api', 60)));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal((r.reason as { code?: string }).code, 'UPSTREAM_UNAVAILABLE');
  }
  // One caller's retry sequence (1 + 3 retries), not ten.
  assert.equal(h.server.events.tokenRequests, 4);
  const status = h.service.describe(h.vault.getCredential('api') as never);
  assert.equal(status.state, 'error');
  assert.equal(status.last_error?.code, 'UPSTREAM_UNAVAILABLE');
});

test('a forgotten grant gives LOGIN_REQUIRED and needs_login; a fresh login recovers', async (t) => {
  const h = await startOAuthHarness(t);
  await h.add('api');
  await h.login('api');
  h.server.forgetGrants();
  h.clock.offsetMs = 6_000;
  await assert.rejects(h.service.getToken('api', 60), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'LOGIN_REQUIRED');
    assert.match(err.message, /run: keyward login api/);
    return true;
  });
  const record = h.vault.getCredential('api');
  assert.ok(record);
  const status = h.service.describe(record);
  assert.equal(status.state, 'needs_login');
  assert.equal(status.last_error?.code, 'LOGIN_REQUIRED');
  assert.equal(h.vault.readSecret(record, SECRET_FIELDS.refreshToken), undefined);
  // No retry storm: the second call fails without reaching the server.
  h.server.resetEvents();
  await assert.rejects(h.service.getToken('api', 60), { code: 'LOGIN_REQUIRED' });
  assert.equal(h.server.events.tokenRequests, 0);

  await h.login('api');
  const token = await h.service.getToken('api', 60);
  assert.equal((await h.server.verifyAccessToken(token.access_token)).sub, 'user-1');
  assert.equal(h.service.describe(h.vault.getCredential('api') as never).state, 'ready');
});

test('proactive refresh: a credential in use is refreshed before expiry, also after a clock jump', async (t) => {
  const h = await startOAuthHarness(t, { timings: { schedulerTickMs: 50, clockJumpToleranceMs: 1_000 } });
  await h.add('api');
  await h.login('api');
  const used = await h.service.getToken('api', 1); // marks the credential in use
  h.server.resetEvents();
  // The wall clock jumps 4 s ahead (a resume from sleep): the timer, counting monotonic time,
  // would fire late; the tick notices the jump and refreshes at once, before anyone asks.
  h.clock.offsetMs = 4_000;
  const deadline = Date.now() + 2_000;
  while ((h.server.events.grantSuccess.refresh_token ?? 0) === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(h.server.events.grantSuccess.refresh_token, 1);
  const now = await h.service.getToken('api', 60);
  assert.notEqual(now.access_token, used.access_token);
  assert.equal(h.server.events.grantSuccess.refresh_token, 1); // served from the vault
});

test('proactive refresh leaves a credential nobody uses alone', async (t) => {
  const h = await startOAuthHarness(t, { timings: { schedulerTickMs: 50, clockJumpToleranceMs: 1_000 } });
  await h.add('api');
  await h.login('api'); // issued, but never handed out
  h.server.resetEvents();
  h.clock.offsetMs = 4_000;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(h.server.events.tokenRequests, 0);
});

test('no token the server issued appears in the log', async (t) => {
  const h = await startOAuthHarness(t, { timings: FAST_RETRY });
  await h.add('api');
  await h.login('api');
  const seen = [await h.service.getToken('api', 1)];
  h.clock.offsetMs = 6_000;
  seen.push(await h.service.getToken('api', 60));
  seen.push(await h.service.invalidate('api', seen[1]?.access_token ?? ''));
  const record = h.vault.getCredential('api');
  assert.ok(record);
  const refresh = h.vault.readSecret(record, SECRET_FIELDS.refreshToken)?.reveal();
  const text = h.logs.join('');
  assert.match(text, /token refreshed/); // the log is not simply empty
  for (const value of [
    ...seen.map((s) => s.access_token),
    refresh,
    h.server.clients.confidential.client_secret,
  ]) {
    assert.ok(value && !text.includes(value), 'a secret value appeared in the log');
  }
});
