/**
 * Built-in presets for `keyward add <name> --oauth --provider NAME`: endpoints that the
 * providers do not publish through discovery, and the quirks keyward has to work around
 * (peers.md "Provider behaviours worth reproducing"). The failure codes of each provider live in
 * failure-class.ts, beside the generic ones.
 */

/** The preset names, as `--provider` accepts them. */
export const PROVIDER_NAMES = [
  'github',
  'google',
  'microsoft',
  'slack',
  'gitlab',
  'atlassian',
  'notion',
] as const;

/** A preset name. */
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** One provider's endpoints and quirks. */
export interface ProviderPreset {
  name: ProviderName;
  /** Issuer identifier used for the RFC 9207 `iss` check and ID token validation. */
  issuer: string;
  /**
   * Whether `issuer` is exact. Microsoft's multi-tenant endpoints issue tokens under each
   * tenant's own issuer, so neither an `iss` parameter nor an ID token can be checked there.
   */
  exactIssuer: boolean;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint: string | null;
  /** An RFC 7009 endpoint; null where the provider has none (GitHub's grant API is not RFC 7009). */
  revocationEndpoint: string | null;
  /** How a confidential client authenticates at the token endpoint. */
  authMethod: 'client_secret_basic' | 'client_secret_post';
  /** Extra authorization-request parameters the provider needs to issue a refresh token. */
  authorizationParams: Readonly<Record<string, string>>;
  /** Scopes added to whatever the user asks for, because refresh tokens depend on them. */
  requiredScopes: readonly string[];
  /** `token_type` values the provider sends for what are Bearer tokens in practice. */
  bearerTokenTypes: readonly string[];
}

/** The presets. */
export const PROVIDERS: Readonly<Record<ProviderName, ProviderPreset>> = {
  // GitHub App user tokens: 8 h, rotating refresh tokens; token-endpoint errors arrive as HTTP 200
  // with `error`, and bodies are form-encoded unless `Accept: application/json` (oauth4webapi
  // always sends it).
  github: {
    name: 'github',
    issuer: 'https://github.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    deviceAuthorizationEndpoint: 'https://github.com/login/device/code',
    revocationEndpoint: null,
    authMethod: 'client_secret_post',
    authorizationParams: {},
    requiredScopes: [],
    bearerTokenTypes: [],
  },
  // Google does not rotate refresh tokens (keep the old one) and issues one only with
  // access_type=offline, and reliably only with prompt=consent.
  google: {
    name: 'google',
    issuer: 'https://accounts.google.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenEndpoint: 'https://oauth2.googleapis.com/token',
    deviceAuthorizationEndpoint: 'https://oauth2.googleapis.com/device/code',
    revocationEndpoint: 'https://oauth2.googleapis.com/revoke',
    authMethod: 'client_secret_post',
    authorizationParams: { access_type: 'offline', prompt: 'consent' },
    requiredScopes: [],
    bearerTokenTypes: [],
  },
  // Microsoft identity platform (multi-tenant): a new refresh token each time, the old one stays
  // valid; refresh tokens need offline_access; `interaction_required` means log in again.
  microsoft: {
    name: 'microsoft',
    issuer: 'https://login.microsoftonline.com/common/v2.0',
    exactIssuer: false,
    authorizationEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    tokenEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    deviceAuthorizationEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    revocationEndpoint: null,
    authMethod: 'client_secret_post',
    authorizationParams: {},
    requiredScopes: ['offline_access'],
    bearerTokenTypes: [],
  },
  // Slack with token rotation: 12 h tokens; failures are HTTP 200 {"ok":false,"error":...};
  // token_type is "bot" or "user" for what are Bearer tokens.
  slack: {
    name: 'slack',
    issuer: 'https://slack.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://slack.com/oauth/v2/authorize',
    tokenEndpoint: 'https://slack.com/api/oauth.v2.access',
    deviceAuthorizationEndpoint: null,
    revocationEndpoint: null,
    authMethod: 'client_secret_post',
    authorizationParams: {},
    requiredScopes: [],
    bearerTokenTypes: ['bot', 'user'],
  },
  // GitLab.com (self-managed instances work through --issuer and discovery): 2 h tokens,
  // rotating refresh tokens, RFC 7009 revocation.
  gitlab: {
    name: 'gitlab',
    issuer: 'https://gitlab.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://gitlab.com/oauth/authorize',
    tokenEndpoint: 'https://gitlab.com/oauth/token',
    deviceAuthorizationEndpoint: 'https://gitlab.com/oauth/authorize_device',
    revocationEndpoint: 'https://gitlab.com/oauth/revoke',
    authMethod: 'client_secret_basic',
    authorizationParams: {},
    requiredScopes: [],
    bearerTokenTypes: [],
  },
  // Atlassian (3LO): 1 h tokens, rotating refresh tokens only with offline_access; a dead
  // refresh token is an HTTP 403.
  atlassian: {
    name: 'atlassian',
    issuer: 'https://auth.atlassian.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://auth.atlassian.com/authorize',
    tokenEndpoint: 'https://auth.atlassian.com/oauth/token',
    deviceAuthorizationEndpoint: null,
    revocationEndpoint: null,
    authMethod: 'client_secret_post',
    authorizationParams: { audience: 'api.atlassian.com', prompt: 'consent' },
    requiredScopes: ['offline_access'],
    bearerTokenTypes: [],
  },
  // Notion: no `expires_in`, so the token is refreshed only when a client reports a 401 through
  // invalidate; HTTP Basic client authentication.
  notion: {
    name: 'notion',
    issuer: 'https://api.notion.com',
    exactIssuer: true,
    authorizationEndpoint: 'https://api.notion.com/v1/oauth/authorize',
    tokenEndpoint: 'https://api.notion.com/v1/oauth/token',
    deviceAuthorizationEndpoint: null,
    revocationEndpoint: null,
    authMethod: 'client_secret_basic',
    authorizationParams: { owner: 'user' },
    requiredScopes: [],
    bearerTokenTypes: [],
  },
};

/** Tells whether `value` names a preset. */
export function isProviderName(value: unknown): value is ProviderName {
  return typeof value === 'string' && (PROVIDER_NAMES as readonly string[]).includes(value);
}
