/**
 * Turns an `add --oauth` request into what the vault stores: validates every field at the
 * boundary, resolves the endpoints (discovery per RFC 8414, then OpenID Connect Discovery; a
 * preset; or explicit URLs) and picks the client authentication method.
 */
import type * as oauth from 'oauth4webapi';
import { type AddOAuthRequest, GRANT_TYPES, type GrantType } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';
import { Secret } from '../secret.js';
import { fetchAuthorizationServerMetadata } from './metadata-fetch.js';
import type { AuthMethod, OAuthConfig, OAuthState } from './oauth-config.js';
import { SECRET_FIELDS } from './oauth-config.js';
import { isProviderName, PROVIDER_NAMES, PROVIDERS } from './providers.js';
import type { UpstreamContext } from './upstream.js';
import { requireSafeUrl, requireUpstreamUrl } from './url-policy.js';

/** What `prepareCredential` hands the vault. */
export interface PreparedCredential {
  config: Record<string, unknown>;
  state: Record<string, unknown>;
  secrets: Record<string, Secret>;
}

/** RFC 6749 §3.3 scope-token characters. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/;

function invalid(message: string): ApiError {
  return new ApiError('INVALID_REQUEST', message);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string`);
  return value;
}

/** Normalises a scope string: single spaces, no duplicates, required scopes appended. */
function normalizeScope(value: string | undefined, required: readonly string[]): string | null {
  const tokens = (value ?? '').split(/\s+/).filter((t) => t.length > 0);
  for (const token of tokens) {
    if (!SCOPE_TOKEN.test(token))
      throw invalid(`scope "${token.slice(0, 64)}" has characters RFC 6749 does not allow`);
  }
  const all = [...new Set([...tokens, ...required])];
  return all.length > 0 ? all.join(' ') : null;
}

/** Where a credential's endpoints came from, and what the server says it supports. */
type Endpoints = Pick<
  OAuthConfig,
  | 'source'
  | 'provider'
  | 'issuer'
  | 'exact_issuer'
  | 'authorization_endpoint'
  | 'token_endpoint'
  | 'device_authorization_endpoint'
  | 'revocation_endpoint'
  | 'iss_parameter_supported'
> & {
  auth_methods: readonly string[] | null;
  grant_types: readonly string[] | null;
  required_scopes: readonly string[];
};

/** Validates a request and resolves its endpoints; throws INVALID_REQUEST or UPSTREAM_*. */
export async function prepareOAuthCredential(
  ctx: UpstreamContext,
  req: AddOAuthRequest,
  clientSecret: Secret | undefined,
): Promise<PreparedCredential> {
  // A secret in the request body is wrapped at once, so nothing below holds it as a string.
  const inlineSecret = optionalString(req.client_secret, 'client_secret');
  const secret = clientSecret ?? (inlineSecret !== undefined ? Secret.fromString(inlineSecret) : undefined);
  if (secret !== undefined && secret.length === 0) throw invalid('client_secret must not be empty');

  const clientId = optionalString(req.client_id, 'client_id');
  if (clientId === undefined) throw invalid('client_id is required (--client-id)');
  if (clientId.length > 512 || !/^[\x20-\x7e]+$/.test(clientId))
    throw invalid('client_id has unusable characters');

  const grant: GrantType = req.grant ?? 'authorization_code';
  if (!GRANT_TYPES.includes(grant)) throw invalid(`grant must be one of ${GRANT_TYPES.join(', ')}`);
  if (grant === 'client_credentials' && secret === undefined) {
    throw invalid('the client_credentials grant needs a client secret (--client-secret-stdin)');
  }
  if (req.no_resource === true && req.resource !== undefined) {
    throw invalid('give either --resource or --no-resource, not both');
  }
  const resource =
    req.resource === undefined || req.no_resource === true ? null : requireSafeUrl(req.resource, 'resource');
  const redirectPort = optionalPort(req.redirect_port);
  if (clientId.startsWith('https://')) checkClientIdMetadataDocument(clientId, secret !== undefined);

  const endpoints = await resolveEndpoints(ctx, req);
  if (endpoints.grant_types !== null && !endpoints.grant_types.includes(grantTypeUri(grant))) {
    throw invalid(`the authorization server does not support the ${grant} grant`);
  }
  if (grant === 'authorization_code' && endpoints.authorization_endpoint === null) {
    throw invalid('the authorization_code grant needs an authorization endpoint (--authorization-url)');
  }
  if (grant === 'device_code' && endpoints.device_authorization_endpoint === null) {
    throw invalid('the device_code grant needs a device authorization endpoint (--device-authorization-url)');
  }

  const config: OAuthConfig = {
    source: endpoints.source,
    provider: endpoints.provider,
    issuer: endpoints.issuer,
    exact_issuer: endpoints.exact_issuer,
    authorization_endpoint: endpoints.authorization_endpoint,
    token_endpoint: endpoints.token_endpoint,
    device_authorization_endpoint: endpoints.device_authorization_endpoint,
    revocation_endpoint: endpoints.revocation_endpoint,
    iss_parameter_supported: endpoints.iss_parameter_supported,
    client_id: clientId,
    token_endpoint_auth_method: chooseAuthMethod(secret !== undefined, endpoints),
    scope: normalizeScope(optionalString(req.scope, 'scope'), endpoints.required_scopes),
    resource,
    grant,
    redirect_port: redirectPort,
    prompt: null,
  };
  const state: OAuthState = {
    // Client credentials need no login: a token is fetched on the first request.
    state: grant === 'client_credentials' ? 'ready' : 'needs_login',
    expires_at: null,
    last_refresh_at: null,
    lifetime_s: null,
    scope: null,
    token_type: 'Bearer',
    last_error: null,
  };
  return {
    config: { ...config },
    state: { ...state },
    secrets: secret !== undefined ? { [SECRET_FIELDS.clientSecret]: secret } : {},
  };
}

/** Checks `redirect_port`: a port an unprivileged listener can bind, or none. */
function optionalPort(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1024 || value > 65535) {
    throw invalid('redirect_port must be an integer from 1024 to 65535');
  }
  return value;
}

/**
 * Checks a client id that is an OAuth Client ID Metadata Document URL (draft-ietf-oauth-client-id-
 * metadata-document §3: https, a path, no fragment, no credentials, no dot segments). Such a
 * client has no secret: the document names its redirect URIs and the server fetches it.
 */
function checkClientIdMetadataDocument(clientId: string, hasSecret: boolean): void {
  const url = new URL(requireSafeUrl(clientId, 'client_id'));
  const segments = clientId.slice('https://'.length).split(/[?#]/)[0]?.split('/').slice(1) ?? [];
  if (url.protocol !== 'https:' || url.pathname === '/' || segments.some((p) => p === '.' || p === '..')) {
    throw invalid(
      'a client_id URL (Client ID Metadata Document) must be https with a path and no dot segments',
    );
  }
  if (hasSecret)
    throw invalid(
      'a Client ID Metadata Document client has no client secret: leave out --client-secret-stdin',
    );
}

function grantTypeUri(grant: GrantType): string {
  return grant === 'device_code' ? 'urn:ietf:params:oauth:grant-type:device_code' : grant;
}

/** Picks Basic when the server allows it (RFC 8414 §2 makes it the default), else POST. */
function chooseAuthMethod(hasSecret: boolean, endpoints: Endpoints): AuthMethod {
  if (!hasSecret) return 'none';
  const supported = endpoints.auth_methods ?? ['client_secret_basic'];
  if (supported.includes('client_secret_basic')) return 'client_secret_basic';
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  throw invalid(
    `the authorization server accepts none of client_secret_basic or client_secret_post (it lists ${supported.join(', ')})`,
  );
}

async function resolveEndpoints(ctx: UpstreamContext, req: AddOAuthRequest): Promise<Endpoints> {
  const explicit = [
    req.authorization_url,
    req.token_url,
    req.device_authorization_url,
    req.revocation_url,
  ].some((v) => v !== undefined);
  const sources = [
    req.issuer !== undefined,
    req.provider !== undefined,
    explicit,
    req.mcp_server !== undefined,
  ];
  if (sources.filter(Boolean).length !== 1) {
    throw invalid('give exactly one of --issuer, --provider, or --authorization-url/--token-url');
  }
  if (req.mcp_server !== undefined) {
    throw invalid('credentials for remote MCP servers (--mcp-server) are not supported by this daemon yet');
  }
  if (req.provider !== undefined) return presetEndpoints(req.provider);
  if (req.issuer !== undefined) return discover(ctx, requireSafeUrl(req.issuer, 'issuer'));
  if (req.token_url === undefined) throw invalid('--token-url is required with explicit endpoints');
  const opt = (value: string | undefined, field: string) =>
    value === undefined ? null : requireSafeUrl(value, field);
  return {
    source: 'endpoints',
    provider: null,
    issuer: null,
    exact_issuer: false,
    authorization_endpoint: opt(req.authorization_url, 'authorization_url'),
    token_endpoint: requireSafeUrl(req.token_url, 'token_url'),
    device_authorization_endpoint: opt(req.device_authorization_url, 'device_authorization_url'),
    revocation_endpoint: opt(req.revocation_url, 'revocation_url'),
    iss_parameter_supported: false,
    auth_methods: null,
    grant_types: null,
    required_scopes: [],
  };
}

function presetEndpoints(name: unknown): Endpoints {
  if (!isProviderName(name)) throw invalid(`unknown provider; known providers: ${PROVIDER_NAMES.join(', ')}`);
  const preset = PROVIDERS[name];
  return {
    source: 'provider',
    provider: name,
    issuer: preset.issuer,
    exact_issuer: preset.exactIssuer,
    authorization_endpoint: preset.authorizationEndpoint,
    token_endpoint: preset.tokenEndpoint,
    device_authorization_endpoint: preset.deviceAuthorizationEndpoint,
    revocation_endpoint: preset.revocationEndpoint,
    iss_parameter_supported: false,
    auth_methods: [preset.authMethod],
    grant_types: null,
    required_scopes: preset.requiredScopes,
  };
}

/** Discovery in the MCP authorization spec's order (metadata-fetch.ts). */
async function discover(ctx: UpstreamContext, issuer: string): Promise<Endpoints> {
  return metadataEndpoints(issuer, await fetchAuthorizationServerMetadata(ctx, issuer));
}

/**
 * Reads the endpoints out of authorization server metadata. Metadata is the server's word, not
 * the user's: its URLs get no plain-http loopback exception and may not point at a private
 * address unless the issuer itself is local (url-policy.ts `requireUpstreamUrl`).
 */
function metadataEndpoints(issuer: string, metadata: oauth.AuthorizationServer): Endpoints {
  const url = (value: unknown, field: string): string | null => {
    if (value === undefined) return null;
    try {
      return requireUpstreamUrl(value, field, issuer);
    } catch (err) {
      const reason =
        err instanceof ApiError && err.code === 'UPSTREAM_ERROR' ? `: ${err.message}` : ' (https required)';
      throw new ApiError('UPSTREAM_ERROR', `the metadata of ${issuer} has an unusable ${field}${reason}`);
    }
  };
  const token = url(metadata.token_endpoint, 'token_endpoint');
  if (token === null) throw new ApiError('UPSTREAM_ERROR', `the metadata of ${issuer} has no token_endpoint`);
  const list = (value: unknown): string[] | null =>
    Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : null;
  return {
    source: 'issuer',
    provider: null,
    issuer,
    exact_issuer: true,
    authorization_endpoint: url(metadata.authorization_endpoint, 'authorization_endpoint'),
    token_endpoint: token,
    device_authorization_endpoint: url(
      metadata.device_authorization_endpoint,
      'device_authorization_endpoint',
    ),
    revocation_endpoint: url(metadata.revocation_endpoint, 'revocation_endpoint'),
    iss_parameter_supported: metadata.authorization_response_iss_parameter_supported === true,
    auth_methods: list(metadata.token_endpoint_auth_methods_supported),
    grant_types: list(metadata.grant_types_supported),
    required_scopes: [],
  };
}
