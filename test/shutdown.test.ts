/**
 * Graceful shutdown: SIGTERM while a refresh is in flight (the authorization server holding the
 * token response) lets it finish and commit, answers the waiting caller, then exits 0; the next
 * daemon serves the new token without another refresh.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOidcServer } from './fixtures/oidc-server.js';
import { makeHome, runCli, socketRequest, startDaemon } from './helpers/daemon-process.js';
import { addOAuthCredential, loginHeadless } from './helpers/oauth-cli.js';

test('SIGTERM during a slow refresh exits 0 with the new tokens committed', async (t) => {
  const server = await startOidcServer({ accessTokenTtl: 30 });
  const home = makeHome();
  t.after(async () => {
    await server.close();
    home.cleanup();
  });
  let daemon = await startDaemon(home);
  t.after(() => daemon.stop('SIGKILL'));

  await addOAuthCredential(home, server, 'slow');
  const login = await loginHeadless(home, server, 'slow');
  assert.equal(login.code, 0, login.stderr);

  const old = (await runCli(home, ['token', 'slow'])).stdout.trim();
  server.resetEvents();
  server.injectTokenFailures(1, { delayMs: 2500 });
  const pending = socketRequest(home.socket, 'POST', '/v1/credentials/slow/invalidate', {
    body: { access_token: old },
  });
  await sleep(700);
  const sigtermAt = Date.now();
  daemon.child.kill('SIGTERM');

  const answer = await pending;
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const fresh = answer.body.access_token as string;
  assert.notEqual(fresh, old);
  assert.equal(await daemon.exited, 0);
  assert.ok(Date.now() - sigtermAt < 10_000, 'shutdown is bounded');
  assert.equal(server.events.grantSuccess.refresh_token, 1);

  daemon = await startDaemon(home);
  const after = await runCli(home, ['token', 'slow']);
  assert.equal(after.stdout.trim(), fresh, 'the refreshed token was committed before exit');
  assert.equal(server.events.grantSuccess.refresh_token, 1, 'no second refresh after restart');
  assert.deepEqual(server.events.grantErrors, []);
});
