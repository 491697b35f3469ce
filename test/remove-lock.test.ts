/**
 * `remove` holds the credential's lock (issue 12 item 9): a refresh still waiting on a slow token
 * endpoint commits before the removal, never into a credential re-added under the same name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startOidcServer } from './fixtures/oidc-server.js';
import { makeHome, runCli, socketRequest, startDaemon } from './helpers/daemon-process.js';
import { addOAuthCredential } from './helpers/oauth-cli.js';

const NEW_KEY = 'the-re-added-api-key-4e7f';

test('a slow refresh does not commit into a credential removed and re-added meanwhile', async (t) => {
  const server = await startOidcServer({ accessTokenTtl: 300 });
  const home = makeHome();
  const daemon = await startDaemon(home);
  t.after(async () => {
    await daemon.stop();
    home.cleanup();
    await server.close();
  });
  await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
  const first = await socketRequest(home.socket, 'POST', '/v1/credentials/svc/token', { body: {} });
  assert.equal(first.status, 200, first.text);

  // Hold the next token request at the authorization server, then report the token rejected.
  server.injectTokenFailures(1, { delayMs: 3_000 });
  const before = server.events.tokenRequests;
  const refresh = socketRequest(home.socket, 'POST', '/v1/credentials/svc/invalidate', {
    body: { access_token: first.body.access_token },
  });
  const deadline = Date.now() + 15_000;
  while (server.events.tokenRequests === before) {
    assert.ok(Date.now() < deadline, 'the refresh never reached the token endpoint');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const removed = await runCli(home, ['remove', 'svc', '--no-revoke']);
  assert.equal(removed.code, 0, removed.stderr);
  const added = await runCli(home, ['add', 'svc', '--api-key'], { input: NEW_KEY });
  assert.equal(added.code, 0, added.stderr);
  await refresh; // whatever it answered, it has finished with the vault now

  const status = JSON.parse((await runCli(home, ['status', '--json'])).stdout);
  const svc = status.credentials.find((c: { name: string }) => c.name === 'svc');
  assert.deepEqual(
    { kind: svc.kind, state: svc.state, expires_at: svc.expires_at, last_refresh_at: svc.last_refresh_at },
    { kind: 'api_key', state: 'ready', expires_at: null, last_refresh_at: null },
    'the old refresh wrote into the re-added credential',
  );
  const token = await runCli(home, ['token', 'svc']);
  assert.equal(token.stdout.trim(), NEW_KEY);
});
