/**
 * The authorization code grant with PKCE (RFC 7636, S256), `state`, the RFC 9207 `iss` check and
 * RFC 8707 `resource`, redirecting to a one-shot loopback listener on
 * `http://127.0.0.1:<port>/callback` (RFC 8252 §7.3): the credential's registered port when it
 * has one, else an ephemeral one. The listener answers the browser
 * only after the code exchange, so the page it shows tells the truth, and it closes when the flow
 * settles or times out.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { ApiError } from '../api-error.js';
import { CALLBACK_PAGE_HEADERS, renderCallbackPage } from './callback-page.js';
import { type LoginDeps, loginFailure, resourceParameters } from './login-common.js';
import { authorizationServer, clientAuthentication, oauthClient, presetOf } from './oauth-config.js';
import { callTokenEndpoint } from './upstream.js';

/** Starts the flow: binds the listener, and returns the URL the user must open. */
export async function startAuthorizationCodeFlow(deps: LoginDeps, timeoutMs: number): Promise<string> {
  const { name, config, registry, flow, log } = deps;
  if (config.authorization_endpoint === null) throw new Error('no authorization endpoint');
  const as = authorizationServer(config);
  const client = oauthClient(config);
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();

  const server = http.createServer();
  const port = await listenLoopback(server, config.redirect_port ?? 0, name);
  const redirectUri = `http://127.0.0.1:${port}/callback`;

  const timer = setTimeout(() => {
    registry.fail(
      flow,
      'LOGIN_REQUIRED',
      `the browser did not come back within ${Math.round(timeoutMs / 1000)} s: run: keyward login ${name}`,
    );
  }, timeoutMs);
  timer.unref();
  flow.stop = () => {
    clearTimeout(timer);
    // Stop accepting; the response being written (if any) finishes on its own connection.
    server.close();
    server.closeIdleConnections();
  };

  let exchanging = false;
  server.on('request', (req, res) => {
    const reply = (status: number, ok: boolean, title: string, message: string) => {
      res.writeHead(status, { ...CALLBACK_PAGE_HEADERS, connection: 'close' });
      res.end(renderCallbackPage(ok, title, message));
    };
    const url = new URL(req.url ?? '/', redirectUri);
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      reply(404, false, 'Not found', "This address only receives keyward's login redirect.");
      return;
    }
    if (exchanging || !registry.isPending(flow)) {
      reply(409, false, 'Login already handled', 'This login has already finished. You can close this tab.');
      return;
    }
    if (url.searchParams.get('state') !== state) {
      // Not our redirect (a stale tab, or someone probing the port): keep waiting for the real one.
      reply(
        400,
        false,
        'Unexpected redirect',
        `This redirect does not belong to the login of "${name}" in progress.`,
      );
      return;
    }
    exchanging = true;
    const started = Date.now();
    void exchange(url)
      .then(() => {
        reply(200, true, 'Logged in', `keyward now holds the credential "${name}". You can close this tab.`);
        registry.complete(flow);
        log.info(
          { credential: name, flow: 'authorization_code', duration_ms: Date.now() - started },
          'login complete',
        );
      })
      .catch((err: unknown) => {
        const failure = loginFailure(name, err, config);
        reply(400, false, 'Login failed', `${failure.message}`);
        registry.fail(flow, failure.code, failure.message);
        log.warn({ credential: name, flow: 'authorization_code', outcome: failure.code }, 'login failed');
      });
  });

  async function exchange(callback: URL): Promise<void> {
    // Checks state, and iss against the issuer (RFC 9207) when the server sends or promised one;
    // without a known issuer (explicit endpoints) there is nothing to compare, so iss is dropped.
    const params = new URLSearchParams(callback.searchParams);
    if (!config.exact_issuer) params.delete('iss');
    const validated = oauth.validateAuthResponse(as, client, params, state);
    const secret = deps.clientSecret();
    try {
      const auth = clientAuthentication(config, secret);
      const sentAt = deps.upstream.now();
      const tokens = await callTokenEndpoint(
        deps.upstream,
        config,
        `the login of "${name}"`,
        (options) =>
          oauth.authorizationCodeGrantRequest(as, client, auth, validated, redirectUri, verifier, {
            ...options,
            additionalParameters: resourceParameters(config),
          }),
        (response, options) => oauth.processAuthorizationCodeResponse(as, client, response, options),
      );
      await deps.commit(tokens, sentAt);
    } finally {
      secret?.wipe();
    }
  }

  const url = new URL(config.authorization_endpoint);
  const query = url.searchParams;
  query.set('response_type', 'code');
  query.set('client_id', config.client_id);
  query.set('redirect_uri', redirectUri);
  query.set('state', state);
  query.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  query.set('code_challenge_method', 'S256');
  if (config.scope !== null) query.set('scope', config.scope);
  if (config.resource !== null) query.set('resource', config.resource);
  if (config.prompt !== null) query.set('prompt', config.prompt);
  for (const [key, value] of Object.entries(presetOf(config)?.authorizationParams ?? {}))
    query.set(key, value);
  return url.href;
}

/**
 * Binds the login listener on 127.0.0.1:`port` (0: ephemeral) and returns the port. A registered
 * port that another process holds fails the login with what to do about it, since the server
 * will only redirect there.
 */
async function listenLoopback(server: http.Server, port: number, name: string): Promise<number> {
  // A superseded login of the same credential has closed its listener already (flow-registry.ts
  // stops it in begin()), and libuv releases a listening socket at once: no retry needed.
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
    throw new ApiError(
      'UPSTREAM_UNAVAILABLE',
      `the login redirect port 127.0.0.1:${port} of "${name}" is in use by another process ` +
        `(find it with: lsof -nP -iTCP:${port} -sTCP:LISTEN, or ss -ltnp 'sport = :${port}'); ` +
        'stop that process (an mcp-remote, or another credential added with the same --redirect-port), ' +
        'or remove the credential and add it again with a free --redirect-port ' +
        '(a pre-registered client needs that port registered at the server too)',
    );
  }
  return (server.address() as AddressInfo).port;
}

/**
 * Returns a loopback port that is free now, to register as the credential's redirect port. The
 * kernel picks it from the ephemeral range; it is released at once and bound again at each login.
 */
export async function pickFreeLoopbackPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
