// The oidc-provider fixture itself, driven with plain oauth4webapi: these tests pin down the
// server behaviour the refresh-engine tests rely on as their oracle (reuse detection revokes the
// whole grant, forgotten grants answer invalid_grant, injected failures answer as told).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { HeadlessBrowser } from './fixtures/headless-browser.js';
import { type OidcServer, startOidcServer } from './fixtures/oidc-server.js';

const insecure = { [oauth.allowInsecureRequests]: true };

describe('oidc-provider fixture', () => {
  let server: OidcServer;
  let as: oauth.AuthorizationServer;
  let client: oauth.Client;
  let auth: oauth.ClientAuth;

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: 5 });
    const issuer = new URL(server.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
    client = { client_id: server.clients.confidential.client_id };
    auth = oauth.ClientSecretBasic(server.clients.confidential.client_secret);
  });
  after(() => server.close());

  /** Runs the authorization code flow headlessly and returns the token response. */
  async function login(): Promise<oauth.TokenEndpointResponse> {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const redirectUri = 'http://127.0.0.1:9/callback';
    const url = new URL(as.authorization_endpoint as string);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid api:read',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    // Nothing listens on port 9 (completeAuthorization would fail there), so walk the redirects
    // only up to the callback URL.
    const callback = await redirectTarget(url.href);
    const params = oauth.validateAuthResponse(as, client, new URL(callback), state);
    const res = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      redirectUri,
      verifier,
      insecure,
    );
    return oauth.processAuthorizationCodeResponse(as, client, res);
  }

  async function redirectTarget(url: string): Promise<string> {
    const page = await new HeadlessBrowser().follow(url, (next) => next.startsWith(server.issuer));
    const target = page.location ?? '';
    assert.ok(target.startsWith('http://127.0.0.1:9/callback?'), `ended at ${page.url}`);
    return target;
  }

  test('issues a JWT access token that verifies against its JWKS, and a refresh token', async () => {
    const tokens = await login();
    const claims = await server.verifyAccessToken(tokens.access_token);
    assert.equal(claims.sub, 'user-1');
    assert.equal(typeof tokens.refresh_token, 'string');
    assert.equal(tokens.expires_in, 5);
    await assert.rejects(server.verifyAccessToken(`${tokens.access_token}x`));
  });

  test('reuse detection: an already-used refresh token revokes the whole grant', async () => {
    const tokens = await login();
    const first = oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token as string, insecure),
    );
    const rotated = (await first).refresh_token as string;
    assert.notEqual(rotated, tokens.refresh_token);
    server.resetEvents();
    const reuse = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      tokens.refresh_token as string,
      insecure,
    );
    await assert.rejects(oauth.processRefreshTokenResponse(as, client, reuse), { error: 'invalid_grant' });
    // The newest refresh token died with the grant.
    const after = await oauth.refreshTokenGrantRequest(as, client, auth, rotated, insecure);
    await assert.rejects(oauth.processRefreshTokenResponse(as, client, after), { error: 'invalid_grant' });
    assert.equal(server.events.grantErrors.length, 2);
    assert.match(server.events.grantErrors[0]?.detail ?? '', /already used/);
  });

  test('forgetGrants makes refresh tokens invalid_grant', async () => {
    const tokens = await login();
    server.forgetGrants();
    const res = await oauth.refreshTokenGrantRequest(
      as,
      client,
      auth,
      tokens.refresh_token as string,
      insecure,
    );
    await assert.rejects(oauth.processRefreshTokenResponse(as, client, res), { error: 'invalid_grant' });
  });

  test('injectTokenFailures answers the next token requests as told, then lets them through', async () => {
    server.injectTokenFailures(1, { status: 503, retryAfter: 2 });
    const params = { scope: 'api:read' };
    const failed = await oauth.clientCredentialsGrantRequest(as, client, auth, params, insecure);
    assert.equal(failed.status, 503);
    assert.equal(failed.headers.get('retry-after'), '2');
    const ok = await oauth.clientCredentialsGrantRequest(as, client, auth, params, insecure);
    const tokens = await oauth.processClientCredentialsResponse(as, client, ok);
    assert.equal((await server.verifyAccessToken(tokens.access_token)).client_id, client.client_id);
  });

  test('device codes can be approved and denied headlessly', async () => {
    const start = async () =>
      oauth.processDeviceAuthorizationResponse(
        as,
        client,
        await oauth.deviceAuthorizationRequest(as, client, auth, { scope: 'openid api:read' }, insecure),
      );
    const approved = await start();
    assert.equal(approved.interval, 1);
    await server.approveDeviceCode(approved.user_code);
    const res = await oauth.deviceCodeGrantRequest(as, client, auth, approved.device_code, insecure);
    const tokens = await oauth.processDeviceCodeResponse(as, client, res);
    assert.equal((await server.verifyAccessToken(tokens.access_token)).sub, 'user-1');

    const denied = await start();
    await server.denyDeviceCode(denied.user_code);
    const refused = await oauth.deviceCodeGrantRequest(as, client, auth, denied.device_code, insecure);
    await assert.rejects(oauth.processDeviceCodeResponse(as, client, refused), { error: 'access_denied' });
  });
});
