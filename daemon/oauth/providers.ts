/**
 * Built-in presets for `keyward add <name> --oauth --provider NAME`: the ONE table of what each
 * provider needs that discovery cannot tell, and of every quirk keyward works around for it.
 * Each quirk carries the documentation it comes from; docs/providers.md is the same table for
 * people. The engine reads these fields and never checks a provider's name.
 */
import { testOverride } from '../test-overrides.js';

/** The preset names, as `--provider` accepts them. */
export const PROVIDER_NAMES = [
  'github',
  'google',
  'microsoft',
  'slack',
  'slack-user',
  'gitlab',
  'atlassian',
  'notion',
] as const;

/** A preset name. */
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/**
 * A revocation that is not RFC 7009 but a provider API call, described as data (the engine
 * sends it as described and never looks at which provider it is).
 */
export interface RevocationCall {
  method: 'POST' | 'DELETE';
  body: 'form' | 'json';
  /** The body field that carries the token. */
  tokenField: string;
  /** HTTP Basic with the client id and secret, or none (the token itself authenticates). */
  clientAuth: 'client_secret_basic' | 'none';
  headers: Readonly<Record<string, string>>;
  /** Statuses that mean the token is gone: revoked now, or already unknown. */
  doneStatuses: readonly number[];
}

/** One provider's endpoints and quirks. */
export interface ProviderPreset {
  name: ProviderName;
  /** One line for `keyward add --help`. */
  summary: string;
  /** The provider's documentation this preset was written from. */
  docs: readonly string[];
  /** Issuer identifier used for the RFC 9207 `iss` check and ID token validation. */
  issuer: string;
  /**
   * Whether `issuer` is exact. Microsoft's multi-tenant endpoints issue tokens under each
   * tenant's own issuer, so neither an `iss` parameter nor an ID token can be checked there.
   */
  exactIssuer: boolean;
  /** Other spellings of `issuer` that the provider's ID tokens carry in `iss`. */
  issuerAliases: readonly string[];
  authorizationEndpoint: string;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint: string | null;
  /**
   * Where tokens are revoked (`{client_id}` stands for the credential's client id); null where
   * the provider has no way to revoke these tokens.
   */
  revocationEndpoint: string | null;
  /** How to call `revocationEndpoint` when it is not RFC 7009; null for RFC 7009. */
  revocationCall: RevocationCall | null;
  /** Which token `remove` revokes: the refresh token ends the grant where the provider allows it. */
  revokeToken: 'refresh_token' | 'access_token';
  /** Whether the revocation request carries RFC 7009 `token_type_hint`. */
  revocationTokenTypeHint: boolean;
  /** How a confidential client authenticates at the token endpoint. */
  authMethod: 'client_secret_basic' | 'client_secret_post';
  /** Encoding of token and revocation request bodies (RFC 6749 says form; some document JSON). */
  requestBody: 'form' | 'json';
  /** Headers sent with every token and revocation request. */
  requestHeaders: Readonly<Record<string, string>>;
  /** The authorization-request parameter that carries the scope. */
  scopeParameter: 'scope' | 'user_scope';
  /** Extra authorization-request parameters the provider needs to issue a refresh token. */
  authorizationParams: Readonly<Record<string, string>>;
  /** Scopes added to whatever the user asks for, because refresh tokens depend on them. */
  requiredScopes: readonly string[];
  /** Whether the endpoints accept an RFC 8707 `resource` parameter. */
  acceptsResource: boolean;
  /** Where the token is in a token-endpoint answer: at the top, or in Slack's `authed_user`. */
  tokenLocation: 'top' | 'authed_user';
  /** `token_type` values the provider sends for what are Bearer tokens in practice. */
  bearerTokenTypes: readonly string[];
  /** Provider `error` codes that mean the grant is gone, like `invalid_grant`. */
  loginErrors: readonly string[];
  /** Bare HTTP statuses (no `error` code) that mean the grant is gone. */
  loginStatuses: readonly number[];
  /** The answer field that carries the error code: RFC 6749's `error`, or Notion's `code`. */
  errorCodeField: 'error' | 'code';
}

const SLACK_DOCS = [
  'https://docs.slack.dev/authentication/installing-with-oauth',
  'https://docs.slack.dev/reference/methods/oauth.v2.access',
  'https://docs.slack.dev/authentication/using-token-rotation',
];

/** Slack's common part: both presets share endpoints, client authentication and error shapes. */
const SLACK_COMMON = {
  issuer: 'https://slack.com',
  exactIssuer: true,
  issuerAliases: [],
  authorizationEndpoint: 'https://slack.com/oauth/v2/authorize',
  tokenEndpoint: 'https://slack.com/api/oauth.v2.access',
  deviceAuthorizationEndpoint: null,
  // auth.revoke (https://docs.slack.dev/reference/methods/auth.revoke) is a Web API method, not
  // RFC 7009: the token to revoke is the `token` argument and authenticates the call; it answers
  // HTTP 200 {"ok":true,"revoked":true}.
  revocationEndpoint: 'https://slack.com/api/auth.revoke',
  revocationCall: {
    method: 'POST',
    body: 'form',
    tokenField: 'token',
    clientAuth: 'none',
    headers: {},
    doneStatuses: [200],
  },
  revokeToken: 'access_token',
  revocationTokenTypeHint: false,
  // oauth.v2.access: "avoid sending client_id and client_secret as parameters ... supply the
  // Client ID and Client Secret using the HTTP Basic authentication scheme".
  authMethod: 'client_secret_basic',
  requestBody: 'form',
  requestHeaders: {},
  authorizationParams: {},
  requiredScopes: [],
  acceptsResource: true,
  // token_type is "bot" or "user" for what are Bearer tokens (oauth.v2.access response).
  bearerTokenTypes: ['bot', 'user'],
  // Errors are HTTP 200 {"ok":false,"error":...} (oauth.v2.access "Errors" table).
  loginErrors: [
    'invalid_refresh_token',
    'token_revoked',
    'token_expired',
    'invalid_code',
    'code_already_used',
  ],
  loginStatuses: [],
  errorCodeField: 'error',
} as const;

/** The presets. */
export const PROVIDERS: Readonly<Record<ProviderName, ProviderPreset>> = {
  github: {
    name: 'github',
    summary: 'GitHub App or OAuth App user tokens',
    docs: [
      'https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps',
      'https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app',
      'https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens',
      // PKCE (S256 only) accepted, not required, since 2025-07.
      'https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication',
    ],
    issuer: 'https://github.com',
    exactIssuer: true,
    issuerAliases: [],
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    deviceAuthorizationEndpoint: 'https://github.com/login/device/code',
    // "Delete an app authorization" (REST, not RFC 7009): DELETE with the access token in a JSON
    // body and HTTP Basic client credentials; 204 when done. Deleting the grant also kills the
    // refresh token. https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization
    revocationEndpoint: 'https://api.github.com/applications/{client_id}/grant',
    revocationCall: {
      method: 'DELETE',
      body: 'json',
      tokenField: 'access_token',
      clientAuth: 'client_secret_basic',
      headers: { Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28' },
      doneStatuses: [204, 404],
    },
    revokeToken: 'access_token',
    revocationTokenTypeHint: false,
    // authorizing-oauth-apps: client_id and client_secret are body parameters.
    authMethod: 'client_secret_post',
    // Answers are form-encoded unless `Accept: application/json` (oauth4webapi always sends it).
    requestBody: 'form',
    requestHeaders: {},
    scopeParameter: 'scope',
    authorizationParams: {},
    requiredScopes: [],
    acceptsResource: true,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    // Token-endpoint errors arrive as HTTP 200 {"error":...} (refreshing-user-access-tokens,
    // authorizing-oauth-apps "Error codes for the device flow").
    loginErrors: ['bad_refresh_token', 'bad_verification_code'],
    loginStatuses: [],
    errorCodeField: 'error',
  },
  google: {
    name: 'google',
    summary: 'Google APIs (installed-app flow)',
    docs: [
      'https://developers.google.com/identity/protocols/oauth2/native-app',
      'https://developers.google.com/identity/protocols/oauth2/web-server',
      'https://developers.google.com/identity/protocols/oauth2/limited-input-device',
      'https://developers.google.com/identity/openid-connect/openid-connect',
    ],
    issuer: 'https://accounts.google.com',
    exactIssuer: true,
    // openid-connect "Validating an ID token": iss is https://accounts.google.com or
    // accounts.google.com.
    issuerAliases: ['accounts.google.com'],
    authorizationEndpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenEndpoint: 'https://oauth2.googleapis.com/token',
    // limited-input-device: answers `verification_url` (not RFC 8628's `verification_uri`) and
    // pending polls with HTTP 428; upstream.ts normalises both for every server.
    deviceAuthorizationEndpoint: 'https://oauth2.googleapis.com/device/code',
    // web-server "Revoking a token": POST token=...; a refresh token revokes the whole grant.
    revocationEndpoint: 'https://oauth2.googleapis.com/revoke',
    revocationCall: null,
    revokeToken: 'refresh_token',
    revocationTokenTypeHint: false,
    authMethod: 'client_secret_post',
    requestBody: 'form',
    requestHeaders: {},
    scopeParameter: 'scope',
    // web-server "Refresh tokens": a refresh token only with access_type=offline, and again only
    // with prompt=consent once the user has consented before.
    authorizationParams: { access_type: 'offline', prompt: 'consent' },
    requiredScopes: [],
    acceptsResource: true,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    loginErrors: [],
    loginStatuses: [],
    errorCodeField: 'error',
  },
  microsoft: {
    name: 'microsoft',
    summary: 'Microsoft identity platform (Entra ID, multi-tenant "common")',
    docs: [
      'https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow',
      'https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code',
      'https://learn.microsoft.com/entra/identity-platform/refresh-tokens',
      'https://learn.microsoft.com/entra/identity-platform/reference-error-codes',
    ],
    issuer: 'https://login.microsoftonline.com/common/v2.0',
    exactIssuer: false,
    issuerAliases: [],
    authorizationEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    tokenEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    deviceAuthorizationEndpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    // No revocation endpoint: refresh-tokens "Revocation" is by password change or admin action.
    revocationEndpoint: null,
    revocationCall: null,
    revokeToken: 'refresh_token',
    revocationTokenTypeHint: true,
    authMethod: 'client_secret_post',
    requestBody: 'form',
    requestHeaders: {},
    scopeParameter: 'scope',
    authorizationParams: {},
    // v2-oauth2-auth-code-flow: a refresh token only with the offline_access scope.
    requiredScopes: ['offline_access'],
    // The v2 endpoints answer `resource` with AADSTS901002; the resource goes in the scope.
    acceptsResource: false,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    // interaction_required & co. mean the user must sign in again (reference-error-codes).
    loginErrors: ['interaction_required', 'login_required', 'consent_required'],
    loginStatuses: [],
    errorCodeField: 'error',
  },
  slack: {
    ...SLACK_COMMON,
    name: 'slack',
    summary: 'Slack bot token (xoxb-, `scope`)',
    docs: SLACK_DOCS,
    scopeParameter: 'scope',
    tokenLocation: 'top',
  },
  'slack-user': {
    ...SLACK_COMMON,
    name: 'slack-user',
    summary: 'Slack user token (xoxp-, `user_scope`)',
    docs: [...SLACK_DOCS, 'https://docs.slack.dev/authentication/tokens#user'],
    // installing-with-oauth: user scopes go in `user_scope`, and the user token comes back in
    // `authed_user` (`access_token`, `token_type: "user"`, `scope`, and with rotation
    // `refresh_token`, `expires_in`).
    scopeParameter: 'user_scope',
    tokenLocation: 'authed_user',
  },
  gitlab: {
    name: 'gitlab',
    summary: 'GitLab.com (self-managed GitLab: use --issuer)',
    docs: ['https://docs.gitlab.com/api/oauth2/'],
    issuer: 'https://gitlab.com',
    exactIssuer: true,
    issuerAliases: [],
    authorizationEndpoint: 'https://gitlab.com/oauth/authorize',
    tokenEndpoint: 'https://gitlab.com/oauth/token',
    deviceAuthorizationEndpoint: 'https://gitlab.com/oauth/authorize_device',
    revocationEndpoint: 'https://gitlab.com/oauth/revoke',
    revocationCall: null,
    revokeToken: 'refresh_token',
    revocationTokenTypeHint: true,
    // oauth2 docs: client_id and client_secret are sent as request parameters.
    authMethod: 'client_secret_post',
    requestBody: 'form',
    requestHeaders: {},
    scopeParameter: 'scope',
    authorizationParams: {},
    requiredScopes: [],
    acceptsResource: true,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    loginErrors: [],
    loginStatuses: [],
    errorCodeField: 'error',
  },
  atlassian: {
    name: 'atlassian',
    summary: 'Atlassian Cloud (Jira, Confluence) OAuth 2.0 (3LO)',
    docs: ['https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/'],
    issuer: 'https://auth.atlassian.com',
    exactIssuer: true,
    issuerAliases: [],
    authorizationEndpoint: 'https://auth.atlassian.com/authorize',
    tokenEndpoint: 'https://auth.atlassian.com/oauth/token',
    deviceAuthorizationEndpoint: null,
    revocationEndpoint: null,
    revocationCall: null,
    revokeToken: 'refresh_token',
    revocationTokenTypeHint: true,
    // The token requests are documented as JSON bodies carrying client_id and client_secret.
    authMethod: 'client_secret_post',
    requestBody: 'json',
    requestHeaders: {},
    scopeParameter: 'scope',
    // audience=api.atlassian.com and prompt=consent are required authorization parameters.
    authorizationParams: { audience: 'api.atlassian.com', prompt: 'consent' },
    // "Implementing a refresh token flow": rotating refresh tokens only with offline_access.
    requiredScopes: ['offline_access'],
    acceptsResource: true,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    loginErrors: [],
    // A dead refresh token is an HTTP 403, sometimes without an `error` body.
    loginStatuses: [403],
    errorCodeField: 'error',
  },
  notion: {
    name: 'notion',
    summary: 'Notion public connections (no expiry; rotating refresh tokens)',
    docs: [
      'https://developers.notion.com/docs/authorization',
      'https://developers.notion.com/reference/create-a-token',
      'https://developers.notion.com/reference/refresh-a-token',
      'https://developers.notion.com/reference/revoke-token',
    ],
    issuer: 'https://api.notion.com',
    exactIssuer: true,
    issuerAliases: [],
    authorizationEndpoint: 'https://api.notion.com/v1/oauth/authorize',
    tokenEndpoint: 'https://api.notion.com/v1/oauth/token',
    deviceAuthorizationEndpoint: null,
    // revoke-token: POST /v1/oauth/revoke, JSON {"token": <access token>}, HTTP Basic.
    revocationEndpoint: 'https://api.notion.com/v1/oauth/revoke',
    revocationCall: null,
    revokeToken: 'access_token',
    revocationTokenTypeHint: false,
    authMethod: 'client_secret_basic',
    // create-a-token / refresh-a-token / revoke-token: JSON bodies and a Notion-Version header.
    requestBody: 'json',
    requestHeaders: { 'Notion-Version': '2025-09-03' },
    scopeParameter: 'scope',
    authorizationParams: { owner: 'user' },
    requiredScopes: [],
    acceptsResource: true,
    tokenLocation: 'top',
    bearerTokenTypes: [],
    loginErrors: [],
    loginStatuses: [],
    // status-codes: errors are {"object":"error","status":400,"code":"invalid_grant","message":...}.
    errorCodeField: 'code',
  },
};

/** Tells whether `value` names a preset. */
export function isProviderName(value: unknown): value is ProviderName {
  return typeof value === 'string' && (PROVIDER_NAMES as readonly string[]).includes(value);
}

/** The endpoint fields of a preset, as `resolvePreset` may rewrite them. */
type EndpointField =
  | 'authorizationEndpoint'
  | 'tokenEndpoint'
  | 'deviceAuthorizationEndpoint'
  | 'revocationEndpoint';
const ENDPOINT_FIELDS: readonly EndpointField[] = [
  'authorizationEndpoint',
  'tokenEndpoint',
  'deviceAuthorizationEndpoint',
  'revocationEndpoint',
];

/**
 * Returns the preset `name` as `add` stores it. Under test (`KEYWARD_TESTING=1` with
 * `KEYWARD_TEST_PROVIDER_ORIGIN=http://127.0.0.1:<port>`), every endpoint's origin is replaced
 * by that loopback replay server while its path and query are kept, so the preset's real request
 * shapes reach a fixture. Anything but a loopback http(s) origin there is refused.
 */
export function resolvePreset(name: ProviderName, env: NodeJS.ProcessEnv = process.env): ProviderPreset {
  const preset = PROVIDERS[name];
  const origin = testOverride('KEYWARD_TEST_PROVIDER_ORIGIN', env);
  if (origin === undefined) return preset;
  const replay = new URL(origin);
  if (!['127.0.0.1', '[::1]', 'localhost'].includes(replay.hostname) || replay.pathname !== '/') {
    throw new Error('KEYWARD_TEST_PROVIDER_ORIGIN must be a loopback origin such as http://127.0.0.1:8080');
  }
  const rewritten: ProviderPreset = { ...preset };
  for (const field of ENDPOINT_FIELDS) {
    const value = preset[field];
    if (value === null) continue;
    // String surgery rather than URL parsing keeps a `{client_id}` template intact.
    rewritten[field] = value.replace(/^https:\/\/[^/]+/, replay.origin);
  }
  return rewritten;
}
