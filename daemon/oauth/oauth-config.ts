/**
 * The clear part of an OAuth credential as the vault stores it: `config` (registration: where
 * the server is, who the client is, what to ask for) and `state` (lifecycle: expiry, last
 * refresh, last error). Secrets (`client_secret`, `access_token`, `refresh_token`) live in the
 * vault's sealed fields, never here. This module turns the stored shape into oauth4webapi's
 * `AuthorizationServer`, `Client` and `ClientAuth`.
 */
import * as oauth from 'oauth4webapi';
import type { CredentialState, GrantType, LastError } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';
import type { Secret } from '../secret.js';
import type { CredentialRecord, Vault } from '../vault/vault.js';
import { isProviderName, PROVIDERS, type ProviderName } from './providers.js';

/** Vault secret field names. */
export const SECRET_FIELDS = {
  clientSecret: 'client_secret',
  accessToken: 'access_token',
  refreshToken: 'refresh_token',
} as const;

/** How the client authenticates at the token endpoint (RFC 7591 §2 names). */
export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** An OAuth credential's registration data. */
export interface OAuthConfig {
  /** Where the endpoints came from. */
  source: 'issuer' | 'provider' | 'endpoints';
  provider: ProviderName | null;
  /** The issuer identifier; null when only endpoints were given. */
  issuer: string | null;
  /** Whether `issuer` is exact enough to check `iss` (RFC 9207) and ID tokens against. */
  exact_issuer: boolean;
  authorization_endpoint: string | null;
  token_endpoint: string;
  device_authorization_endpoint: string | null;
  revocation_endpoint: string | null;
  /** The server promised an `iss` parameter in every authorization response (RFC 9207 §3). */
  iss_parameter_supported: boolean;
  client_id: string;
  token_endpoint_auth_method: AuthMethod;
  /** The scope asked for, space-separated. */
  scope: string | null;
  /** RFC 8707 resource indicator sent in authorization and token requests. */
  resource: string | null;
  grant: GrantType;
  /**
   * The loopback port of the redirect URI, `http://127.0.0.1:<port>/callback`, listened on at
   * every login: the one keyward registered, or the one a pre-registered client was given. Null:
   * an ephemeral port per login (RFC 8252 §7.3), for servers that match any loopback port.
   */
  redirect_port: number | null;
  /** `prompt` sent in the authorization request: `consent` when asking for `offline_access` (OIDC Core §11). */
  prompt: 'consent' | null;
}

/** An OAuth credential's lifecycle data. */
export interface OAuthState {
  state: CredentialState;
  expires_at: string | null;
  last_refresh_at: string | null;
  /** The current access token's full lifetime, for `min(min_ttl, lifetime/2)`. */
  lifetime_s: number | null;
  /** The scope granted with the current token. */
  scope: string | null;
  token_type: string;
  last_error: LastError | null;
}

const AUTH_METHODS: readonly AuthMethod[] = ['client_secret_basic', 'client_secret_post', 'none'];
const GRANTS: readonly GrantType[] = ['authorization_code', 'device_code', 'client_credentials'];

function str(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

function corrupt(record: CredentialRecord, field: string): ApiError {
  return new ApiError(
    'INTERNAL',
    `credential "${record.name}" has unusable OAuth registration data (${field}); remove and add it again`,
  );
}

/** Returns the named OAuth credential's record; NOT_FOUND or INVALID_REQUEST otherwise. */
export function requireOAuthRecord(vault: Pick<Vault, 'getCredential'>, name: string): CredentialRecord {
  const record = vault.getCredential(name);
  if (record === undefined)
    throw new ApiError('NOT_FOUND', `no credential named "${name}": run: keyward status`);
  if (record.kind !== 'oauth')
    throw new ApiError('INVALID_REQUEST', `credential "${name}" is not an OAuth credential`);
  return record;
}

/** Reads and checks a record's `config`. */
export function readOAuthConfig(record: CredentialRecord): OAuthConfig {
  const c = record.config;
  const tokenEndpoint = str(c.token_endpoint);
  const clientId = str(c.client_id);
  const grant = c.grant as GrantType;
  const method = c.token_endpoint_auth_method as AuthMethod;
  const source = c.source;
  if (tokenEndpoint === null) throw corrupt(record, 'token_endpoint');
  if (clientId === null) throw corrupt(record, 'client_id');
  if (!GRANTS.includes(grant)) throw corrupt(record, 'grant');
  if (!AUTH_METHODS.includes(method)) throw corrupt(record, 'token_endpoint_auth_method');
  if (source !== 'issuer' && source !== 'provider' && source !== 'endpoints') throw corrupt(record, 'source');
  return {
    source,
    provider: isProviderName(c.provider) ? c.provider : null,
    issuer: str(c.issuer),
    exact_issuer: c.exact_issuer === true,
    authorization_endpoint: str(c.authorization_endpoint),
    token_endpoint: tokenEndpoint,
    device_authorization_endpoint: str(c.device_authorization_endpoint),
    revocation_endpoint: str(c.revocation_endpoint),
    iss_parameter_supported: c.iss_parameter_supported === true,
    client_id: clientId,
    token_endpoint_auth_method: method,
    scope: str(c.scope),
    resource: str(c.resource),
    grant,
    redirect_port:
      typeof c.redirect_port === 'number' && Number.isInteger(c.redirect_port) && c.redirect_port > 0
        ? c.redirect_port
        : null,
    prompt: c.prompt === 'consent' ? 'consent' : null,
  };
}

function isLastError(value: unknown): value is LastError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.message === 'string' && typeof v.at === 'string';
}

/** Reads a record's `state`, with defaults for a credential that never had a token. */
export function readOAuthState(record: CredentialRecord): OAuthState {
  const s = record.state;
  const state =
    s.state === 'ready' || s.state === 'needs_login' || s.state === 'error' ? s.state : 'needs_login';
  return {
    state,
    expires_at: str(s.expires_at),
    last_refresh_at: str(s.last_refresh_at),
    lifetime_s: typeof s.lifetime_s === 'number' && Number.isFinite(s.lifetime_s) ? s.lifetime_s : null,
    scope: str(s.scope),
    token_type: str(s.token_type) ?? 'Bearer',
    last_error: isLastError(s.last_error) ? s.last_error : null,
  };
}

/** Builds oauth4webapi's view of the authorization server from a config. */
export function authorizationServer(config: OAuthConfig): oauth.AuthorizationServer {
  return {
    // Without a known issuer there is nothing to compare `iss` with; the token endpoint's origin
    // stands in because oauth4webapi needs some issuer string.
    issuer: config.issuer ?? new URL(config.token_endpoint).origin,
    authorization_endpoint: config.authorization_endpoint ?? undefined,
    token_endpoint: config.token_endpoint,
    device_authorization_endpoint: config.device_authorization_endpoint ?? undefined,
    revocation_endpoint: config.revocation_endpoint ?? undefined,
    authorization_response_iss_parameter_supported: config.exact_issuer && config.iss_parameter_supported,
  };
}

/** Builds oauth4webapi's view of the client from a config. */
export function oauthClient(config: OAuthConfig): oauth.Client {
  return { client_id: config.client_id, token_endpoint_auth_method: config.token_endpoint_auth_method };
}

/**
 * Returns the client authentication for a request. The secret is revealed here, at the one
 * point where it leaves the daemon (in the request to the authorization server).
 */
export function clientAuthentication(
  config: OAuthConfig,
  clientSecret: Secret | undefined,
): oauth.ClientAuth {
  switch (config.token_endpoint_auth_method) {
    case 'none':
      return oauth.None();
    case 'client_secret_basic':
    case 'client_secret_post': {
      if (clientSecret === undefined) {
        throw new ApiError(
          'INTERNAL',
          'the client secret is missing from the vault; remove and add the credential again',
        );
      }
      const value = clientSecret.reveal();
      return config.token_endpoint_auth_method === 'client_secret_basic'
        ? oauth.ClientSecretBasic(value)
        : oauth.ClientSecretPost(value);
    }
  }
}

/** Returns the preset behind a config, if any. */
export function presetOf(config: OAuthConfig): (typeof PROVIDERS)[ProviderName] | null {
  return config.provider === null ? null : PROVIDERS[config.provider];
}
