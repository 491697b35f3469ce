/**
 * OAuth credentials in a running daemon, set up through its socket API the way the CLI does it:
 * register against the oidc-provider fixture (discovery), then log in headlessly (authorization
 * code + PKCE, the fixture's user consenting at once). The fault suite and the benchmarks share it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  AuthorizationCodeLoginResponse,
  CredentialStatus,
  FlowResponse,
} from '../../../shared/protocol.js';
import type { OidcServer } from '../../fixtures/oidc-server.js';
import { socketRequest } from '../../helpers/daemon-process.js';

/** What these helpers need of an authorization server: the fixture, in this process or another. */
export type AuthServer = Pick<OidcServer, 'issuer' | 'clients'> & {
  completeAuthorization(url: string): Promise<unknown>;
};

/** Registers an OAuth credential for the fixture's confidential client (or its public one). */
export async function addOAuthCredential(
  socket: string,
  server: AuthServer,
  name: string,
  options: { publicClient?: boolean; scope?: string } = {},
): Promise<CredentialStatus> {
  const client = options.publicClient ? server.clients.public : server.clients.confidential;
  const res = await socketRequest(socket, 'POST', '/v1/credentials', {
    body: {
      name,
      kind: 'oauth',
      issuer: server.issuer,
      client_id: client.client_id,
      ...(client.client_secret !== undefined ? { client_secret: client.client_secret } : {}),
      scope: options.scope ?? 'openid api:read',
    },
  });
  if (res.status !== 201) throw new Error(`adding ${name} failed: HTTP ${res.status} ${res.text}`);
  return res.body as CredentialStatus;
}

/** Runs `keyward login <name>`'s flow through the socket and the fixture's headless browser. */
export async function loginCredential(
  socket: string,
  server: AuthServer,
  name: string,
  timeoutMs = 15_000,
): Promise<void> {
  const login = await startLogin(socket, name);
  await server.completeAuthorization(login.authorization_url);
  await waitForFlow(socket, login.flow_id, timeoutMs);
}

/** Starts `keyward login <name>`'s authorization code flow through the socket. */
async function startLogin(socket: string, name: string): Promise<AuthorizationCodeLoginResponse> {
  const started = await socketRequest(socket, 'POST', `/v1/credentials/${name}/login`, {
    body: { flow: 'authorization_code' },
  });
  if (started.status !== 200) {
    throw new Error(`login of ${name} failed: HTTP ${started.status} ${started.text}`);
  }
  return started.body as AuthorizationCodeLoginResponse;
}

/** Polls `GET /v1/flows/{id}` until the flow completes; throws when it fails or times out. */
export async function waitForFlow(socket: string, flowId: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await socketRequest(socket, 'GET', `/v1/flows/${flowId}`);
    const flow = res.body as FlowResponse;
    if (flow.state === 'complete') return;
    if (flow.state === 'failed') throw new Error(`login flow failed: ${JSON.stringify(flow.error)}`);
    if (Date.now() > deadline) throw new Error(`login flow still pending after ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Returns one credential's entry of `GET /v1/status`. */
export async function credentialStatus(socket: string, name: string): Promise<CredentialStatus | undefined> {
  const res = await socketRequest(socket, 'GET', '/v1/status');
  if (res.status !== 200) throw new Error(`status failed: HTTP ${res.status}`);
  return (res.body.credentials as CredentialStatus[]).find((c) => c.name === name);
}

/**
 * Logs in a credential whose authorization endpoint redirects straight back with a code (the
 * chaos server): follows that redirect to the daemon's loopback callback, then waits for the flow.
 */
export async function loginByRedirect(socket: string, name: string, timeoutMs = 15_000): Promise<void> {
  const login = await startLogin(socket, name);
  const consent = await fetch(login.authorization_url, { redirect: 'manual' });
  const callback = consent.headers.get('location');
  if (callback === null)
    throw new Error(`the authorization endpoint did not redirect (HTTP ${consent.status})`);
  const page = await fetch(callback);
  await page.text();
  await waitForFlow(socket, login.flow_id, timeoutMs);
}
