/**
 * The audit log's `refreshed` field against a real authorization server (oidc-provider): a token
 * fetched from the server while serving the request is `true`, one served from the daemon's cache
 * is `false`, and an invalidate that makes the daemon fetch a new one is `true` again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { addOAuthCredential } from './helpers/oauth-cli.js';

describe('audit lines say whether a token was refreshed', () => {
  let server: OidcServer;
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: 300 });
    home = makeHome();
    daemon = await startDaemon(home);
    await addOAuthCredential(home, server, 'svc', { grant: 'client_credentials', scope: 'api:read' });
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
    await server?.close();
  });

  test('fetched: true; cached: false; invalidated and fetched again: true', async () => {
    const token = async () => {
      const res = await socketRequest(home.socket, 'POST', '/v1/credentials/svc/token', { body: {} });
      assert.equal(res.status, 200, res.text);
      return res.body.access_token as string;
    };
    const first = await token();
    assert.equal(await token(), first);
    const fresh = await socketRequest(home.socket, 'POST', '/v1/credentials/svc/invalidate', {
      body: { access_token: first },
    });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.body.access_token, first);
    assert.equal(server.events.grantSuccess.client_credentials, 2);

    const audit = await runCli(home, ['audit', '--json']);
    const lines = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.credential === 'svc' && (e.event === 'token' || e.event === 'invalidate'))
      .map((e) => [e.event, e.outcome, e.refreshed]);
    assert.deepEqual(lines, [
      ['token', 'ok', true],
      ['token', 'ok', false],
      ['invalidate', 'ok', true],
    ]);
    assert.ok(!audit.stdout.includes(first) && !audit.stdout.includes(fresh.body.access_token));
    assert.ok(!audit.stdout.includes(server.clients.confidential.client_secret));
  });
});
