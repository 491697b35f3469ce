/**
 * `keyward add <name> --mcp-server <url>`: finds out how a remote MCP server wants to be
 * authorized, as the MCP authorization spec (2025-11-25) lays it out and as deployed servers
 * answer, and turns that into an ordinary OAuth registration for prepare.ts:
 * 1. RFC 9728 protected resource metadata, from `WWW-Authenticate: Bearer resource_metadata=...`
 *    on the server's 401, else `/.well-known/oauth-protected-resource/<path>`, then the root;
 *    any answer that is not metadata (404, a WAF's 403, a CDN's 5xx) moves on to the next;
 * 2. the authorization server it names, through RFC 8414 then OpenID Connect discovery
 *    (metadata-fetch.ts); PKCE with S256 must be advertised, or keyward refuses;
 * 3. the client: a `--client-id` as given (an `https` one is a Client ID Metadata Document),
 *    else RFC 7591 dynamic registration as a native public client with the redirect URI
 *    `http://127.0.0.1:<port>/callback`, a concrete port chosen now and kept with the credential
 *    (many servers match redirect URIs exactly, port included);
 * 4. `resource` (RFC 8707) is the metadata's `resource`, sent in every authorization, token and
 *    refresh request unless `--no-resource`;
 * 5. `offline_access` with `prompt=consent` when the server lists it and no `--scope` was given,
 *    since OpenID Connect servers issue no refresh token otherwise (OIDC Core §11).
 * Every URL taken from a server's answer passes url-policy.ts `requireUpstreamUrl`, anchored at
 * the MCP server URL the user gave.
 */
import type { AddOAuthRequest } from '../../shared/protocol.js';
import { unionScopes } from '../../shared/scope.js';
import { parseBearerChallenge } from '../../shared/www-authenticate.js';
import { ApiError } from '../api-error.js';
import { Secret } from '../secret.js';
import { pickFreeLoopbackPort } from './authorization-code-flow.js';
import { sanitizeErrorDescription } from './login-common.js';
import { fetchAuthorizationServerMetadata, fetchCapped } from './metadata-fetch.js';
import { type PreparedCredential, prepareOAuthCredential } from './prepare.js';
import { parseJsonObject, safeErrorCode, type UpstreamContext } from './upstream.js';
import { parseUrl, requireSafeUrl, requireUpstreamUrl } from './url-policy.js';

/** Returns the loopback redirect URI for a port (RFC 8252 §7.3, the IPv4 literal as §8.3 advises). */
export function loopbackRedirectUri(port: number): string {
  return `http://127.0.0.1:${port}/callback`;
}

/** What RFC 9728 discovery found for a remote MCP server. */
export interface ProtectedResourceInfo {
  /** The server's canonical URI, as the client computed it from the URL the user gave. */
  serverUri: string;
  /** The metadata's `resource`: the RFC 8707 resource indicator to send. */
  resource: string;
  /** Where the metadata came from. */
  metadataUrl: string;
  authorizationServers: string[];
  scopesSupported: string[] | null;
  /** The `scope` of the server's 401 challenge, when it sent one (MCP SEP-835: it wins). */
  challengeScope: string | null;
}

function upstreamError(message: string): ApiError {
  return new ApiError('UPSTREAM_ERROR', message);
}

/**
 * Returns the canonical URI of an MCP server (MCP authorization, "Canonical Server URI"):
 * lower-case scheme and host, no fragment, no trailing slash on an empty path.
 */
export function canonicalServerUri(value: string): string {
  const url = new URL(value);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol}//${url.host}${path}${url.search}`;
}

function stringList(value: unknown): string[] | null {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v !== '') : null;
}

/**
 * Checks a URL that came from a server's answer against the MCP server the user named (`anchor`):
 * a bad one is the server's fault, not the user's.
 */
function safeUpstreamUrl(value: unknown, field: string, source: string, anchor: string): string {
  try {
    return requireUpstreamUrl(value, field, anchor);
  } catch (err) {
    const reason =
      err instanceof ApiError && err.code === 'UPSTREAM_ERROR'
        ? err.message
        : 'https required, or http on loopback';
    throw upstreamError(`${source} names an unusable ${field} (${reason})`);
  }
}

/** The well-known locations of RFC 9728 metadata for a server URL: path-inserted first, then the root. */
export function wellKnownMetadataUrls(serverUri: string): string[] {
  const url = new URL(serverUri);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const urls = [`${url.origin}/.well-known/oauth-protected-resource${path}`];
  if (path !== '') urls.push(`${url.origin}/.well-known/oauth-protected-resource`);
  return urls;
}

/**
 * Tells whether the metadata's `resource` may stand for the server: the same URI, or a same-origin
 * parent path of it (a server that protects a whole origin publishes the origin).
 */
function resourceCovers(resource: string, serverUri: string): boolean {
  const parsed = parseUrl(resource);
  if (parsed === null || parsed.hash !== '') return false;
  const canonical = canonicalServerUri(resource);
  if (canonical === serverUri) return true;
  const server = new URL(serverUri);
  if (parsed.origin !== server.origin || parsed.search !== '') return false;
  const base = parsed.pathname.endsWith('/') ? parsed.pathname : `${parsed.pathname}/`;
  return server.pathname.startsWith(base);
}

/** Asks the server without a token, hoping for a 401 whose challenge names the metadata. */
async function probeChallenge(
  ctx: UpstreamContext,
  serverUri: string,
): Promise<Record<string, string> | undefined> {
  // An `initialize` request is what an MCP client sends first; a protected server answers 401.
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'keyward', version: '1' },
    },
  });
  const answer = await fetchCapped(
    ctx,
    serverUri,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    },
    `the MCP server ${serverUri}`,
    () => false,
  );
  if (answer.status !== 401) return undefined;
  return parseBearerChallenge(answer.headers.get('www-authenticate'));
}

/** Finds and checks a remote MCP server's protected resource metadata (RFC 9728). */
export async function discoverProtectedResource(
  ctx: UpstreamContext,
  serverUrl: string,
): Promise<ProtectedResourceInfo> {
  const serverUri = canonicalServerUri(serverUrl);
  const challenge = await probeChallenge(ctx, serverUri);
  const candidates: string[] = [];
  if (challenge?.resource_metadata !== undefined) {
    candidates.push(
      safeUpstreamUrl(challenge.resource_metadata, 'resource_metadata', 'the 401 challenge', serverUri),
    );
  }
  candidates.push(...wellKnownMetadataUrls(serverUri).filter((u) => !candidates.includes(u)));

  // Deployed servers answer the wrong location with anything (a WAF's 403, a CDN's 502, an HTML
  // page with 200): every answer that is not metadata moves on to the next location.
  let transient: ApiError | undefined;
  for (const metadataUrl of candidates) {
    let answer: Awaited<ReturnType<typeof fetchCapped>>;
    try {
      answer = await fetchCapped(
        ctx,
        metadataUrl,
        { headers: { accept: 'application/json' } },
        `protected resource metadata at ${metadataUrl}`,
      );
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'UPSTREAM_UNAVAILABLE') throw err;
      transient = err;
      continue;
    }
    if (answer.status >= 500 || answer.status === 429) {
      transient = new ApiError(
        'UPSTREAM_UNAVAILABLE',
        `protected resource metadata at ${metadataUrl} failed (HTTP ${answer.status}); try again later`,
      );
    }
    const metadata = answer.status === 200 ? parseJsonObject(answer.text) : undefined;
    if (metadata === undefined) continue;
    const resource = metadata.resource;
    if (typeof resource !== 'string' || !resourceCovers(resource, serverUri)) {
      // RFC 9728 §3.3: metadata for another resource must not be used (it may be an impersonation).
      throw upstreamError(
        `the protected resource metadata at ${metadataUrl} is for another resource than ${serverUri}`,
      );
    }
    const servers = stringList(metadata.authorization_servers) ?? [];
    if (servers.length === 0) {
      throw upstreamError(`the protected resource metadata of ${serverUri} names no authorization server`);
    }
    return {
      serverUri,
      resource,
      metadataUrl,
      authorizationServers: servers,
      scopesSupported: stringList(metadata.scopes_supported),
      challengeScope: challenge?.scope ?? null,
    };
  }
  throw (
    transient ??
    upstreamError(
      `${serverUri} publishes no protected resource metadata (RFC 9728): it may not use OAuth; ` +
        'add it with --oauth and its authorization server instead',
    )
  );
}

/** A client registered dynamically. */
export interface RegisteredClient {
  clientId: string;
  /** Only when the server insisted on a confidential client. */
  clientSecret: Secret | undefined;
}

/** Registers keyward as a native public client (RFC 7591 §3; OIDC Registration `application_type`). */
export async function registerClient(
  ctx: UpstreamContext,
  registrationEndpoint: string,
  options: { scope: string | null; grantTypes: string[]; redirectUri: string },
): Promise<RegisteredClient> {
  const request: Record<string, unknown> = {
    client_name: 'keyward',
    application_type: 'native',
    redirect_uris: [options.redirectUri],
    grant_types: options.grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
  if (options.scope !== null) request.scope = options.scope;
  const answer = await fetchCapped(
    ctx,
    registrationEndpoint,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(request),
    },
    `dynamic client registration at ${registrationEndpoint}`,
  );
  const body = parseJsonObject(answer.text);
  if (answer.status >= 500 || answer.status === 429) {
    throw new ApiError(
      'UPSTREAM_UNAVAILABLE',
      `dynamic client registration failed (HTTP ${answer.status}); try again later`,
    );
  }
  if (answer.status !== 201 && answer.status !== 200) {
    const error = safeErrorCode(body?.error);
    const description = sanitizeErrorDescription(body?.error_description);
    throw upstreamError(
      `dynamic client registration was refused (${error ?? `HTTP ${answer.status}`}` +
        `${description !== undefined ? `: "${description}"` : ''}); ` +
        'register a client by hand and add it with --client-id',
    );
  }
  const clientId = body?.client_id;
  if (typeof clientId !== 'string' || clientId === '' || !/^[\x20-\x7e]{1,512}$/.test(clientId)) {
    throw upstreamError('dynamic client registration answered without a usable client_id');
  }
  const method = body?.token_endpoint_auth_method;
  const secret = body?.client_secret;
  const confidential =
    method !== undefined && method !== 'none' && typeof secret === 'string' && secret !== '';
  return { clientId, clientSecret: confidential ? Secret.fromString(secret) : undefined };
}

/**
 * The scope to register (RFC 7591 §2: what the client may ask for): the login's, plus every scope
 * the server advertises, so that a step-up after a 403 `insufficient_scope` can ask for more than
 * the first login did at servers that hold a client to its registered scope (oidc-provider does).
 */
function registrationScope(scope: string | null, supported: string[] | null): string | null {
  return unionScopes(scope, supported);
}

/** The grant_types to register for a grant (refresh is what keeps the credential alive). */
function grantTypesFor(grant: AddOAuthRequest['grant']): string[] {
  if (grant === 'device_code') return ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'];
  if (grant === 'client_credentials') return ['client_credentials'];
  return ['authorization_code', 'refresh_token'];
}

/**
 * Turns an `add --mcp-server` request into what the vault stores: discovery, the S256 check,
 * dynamic registration when no client id was given, then the ordinary issuer-based preparation
 * with `resource` set to the server's canonical URI.
 */
export async function prepareMcpCredential(
  ctx: UpstreamContext,
  req: AddOAuthRequest,
  clientSecret: Secret | undefined,
): Promise<PreparedCredential> {
  const serverUrl = requireSafeUrl(req.mcp_server, 'mcp_server');
  const others = [
    req.issuer,
    req.provider,
    req.authorization_url,
    req.token_url,
    req.device_authorization_url,
    req.revocation_url,
  ];
  if (others.some((v) => v !== undefined)) {
    throw new ApiError(
      'INVALID_REQUEST',
      '--mcp-server finds the authorization server itself: give no --issuer, --provider or endpoint URLs',
    );
  }
  if (req.no_resource === true && req.resource !== undefined) {
    throw new ApiError('INVALID_REQUEST', 'give either --resource or --no-resource, not both');
  }
  const info = await discoverProtectedResource(ctx, serverUrl);
  if (req.resource !== undefined && canonicalServerUri(req.resource) !== canonicalServerUri(info.resource)) {
    throw new ApiError(
      'INVALID_REQUEST',
      `--resource must be left out with --mcp-server: the server's resource is ${info.resource}`,
    );
  }
  const issuer = safeUpstreamUrl(
    info.authorizationServers[0],
    'authorization server',
    info.metadataUrl,
    info.serverUri,
  );
  const metadata = await fetchAuthorizationServerMetadata(ctx, issuer);
  const grant = req.grant ?? 'authorization_code';
  if (grant !== 'client_credentials' && !(metadata.code_challenge_methods_supported ?? []).includes('S256')) {
    throw upstreamError(
      `the authorization server ${issuer} does not advertise PKCE with S256 ` +
        '(code_challenge_methods_supported); keyward refuses to log in without it',
    );
  }
  // Scope choice (MCP SEP-835): the user's, else the server's 401 challenge, else its metadata.
  let scope = req.scope ?? info.challengeScope ?? info.scopesSupported?.join(' ') ?? null;
  // Without offline_access, OpenID Connect servers (Auth0, Okta, Entra, oidc-provider) issue no
  // refresh token, and the credential dies with its first access token. OIDC Core §11: ask for it
  // with prompt=consent, or the server may drop it. A user's own --scope is taken as meant.
  const offline =
    req.scope === undefined && stringList(metadata.scopes_supported)?.includes('offline_access');
  if (offline === true && grant !== 'client_credentials') scope = unionScopes(scope, 'offline_access');

  let clientId = req.client_id;
  let secret = clientSecret;
  let redirectPort = req.redirect_port;
  let registration: 'static' | 'dynamic' | 'metadata_document' = 'static';
  if (clientId?.startsWith('https://') === true) {
    // A Client ID Metadata Document: the server fetches it; nothing to register. Used as given
    // whether or not the server advertises client_id_metadata_document_supported (README).
    registration = 'metadata_document';
  } else if (clientId === undefined) {
    if (typeof metadata.registration_endpoint !== 'string') {
      throw new ApiError(
        'INVALID_REQUEST',
        `the authorization server ${issuer} offers no dynamic client registration: register a client there and give --client-id`,
      );
    }
    const endpoint = safeUpstreamUrl(metadata.registration_endpoint, 'registration_endpoint', issuer, issuer);
    // A concrete port, kept with the credential: servers that match redirect URIs exactly (the MCP
    // SDK's demo provider, many hosted ones) refuse a port-less registration at login.
    redirectPort ??= await pickFreeLoopbackPort();
    const registered = await registerClient(ctx, endpoint, {
      scope: registrationScope(scope, info.scopesSupported),
      grantTypes: grantTypesFor(grant),
      redirectUri: loopbackRedirectUri(redirectPort),
    });
    clientId = registered.clientId;
    secret = registered.clientSecret ?? secret;
    registration = 'dynamic';
  }
  const prepared = await prepareOAuthCredential(
    ctx,
    {
      ...req,
      mcp_server: undefined,
      issuer,
      client_id: clientId,
      resource: req.no_resource === true ? undefined : info.resource,
      ...(redirectPort !== undefined ? { redirect_port: redirectPort } : {}),
      ...(scope !== null && scope !== '' ? { scope } : {}),
    },
    secret,
  );
  return {
    ...prepared,
    config: {
      ...prepared.config,
      mcp_server: info.serverUri,
      client_registration: registration,
      ...(offline === true && grant === 'authorization_code' ? { prompt: 'consent' } : {}),
    },
  };
}
