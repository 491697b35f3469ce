/**
 * Every call keyward makes to an authorization server goes through here: a timeout on each
 * request, plain HTTP only for loopback, a cap on what is read, and the failure turned into an
 * `UpstreamFailure` with its class (failure-class.ts). oauth4webapi builds the requests and
 * validates the answers; this layer only handles what it cannot express: errors sent with HTTP 200
 * (GitHub's `error`, Slack's `{"ok":false}`), provider token types, and ID tokens whose issuer
 * cannot be known in advance.
 */
import * as oauth from 'oauth4webapi';
import { classifyFailure, type FailureClass, type FailureInput, parseRetryAfter } from './failure-class.js';
import { type OAuthConfig, presetOf } from './oauth-config.js';
import type { ProviderName, ProviderPreset } from './providers.js';
import { allowsInsecure } from './url-policy.js';

/** The most of a response body keyward reads from an authorization server. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** What an upstream call needs from the service. */
export interface UpstreamContext {
  fetch: typeof fetch;
  /** Timeout of each HTTP request, in ms. */
  timeoutMs: number;
  now: () => number;
}

/** A failed upstream call, classified. Its message never holds a response body or a token. */
export class UpstreamFailure extends Error {
  readonly failureClass: FailureClass;
  /** The OAuth `error` code, when the server sent a well-formed one. */
  readonly oauthError: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  /** The server's `error_description`, raw: pass it through `sanitizeErrorDescription` before showing it. */
  readonly description: unknown;

  constructor(
    failureClass: FailureClass,
    message: string,
    details: {
      oauthError?: string;
      status?: number;
      retryAfterMs?: number;
      cause?: unknown;
      description?: unknown;
    } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'UpstreamFailure';
    this.failureClass = failureClass;
    this.oauthError = details.oauthError;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.description = details.description;
  }
}

/**
 * Returns oauth4webapi request options for a call to `url`: timeout, fetch, loopback HTTP, and
 * the request shape the credential's preset documents (a JSON body, extra headers).
 */
export function requestOptions(
  ctx: UpstreamContext,
  url: string | null,
  config?: OAuthConfig,
): oauth.HttpRequestOptions<'POST' | 'GET'> {
  const preset = config === undefined ? null : presetOf(config);
  return {
    signal: () => AbortSignal.timeout(ctx.timeoutMs),
    [oauth.customFetch]: (input: string, init: oauth.CustomFetchOptions<'POST' | 'GET', unknown>) =>
      ctx.fetch(input, (preset === null ? init : shapeRequest(preset, init)) as RequestInit),
    // Loopback only: checked per endpoint, so discovery metadata cannot smuggle in a remote http URL.
    [oauth.allowInsecureRequests]: url !== null && allowsInsecure(url),
  };
}

/** Applies a preset's documented request shape to a request oauth4webapi built as a form. */
function shapeRequest(
  preset: ProviderPreset,
  init: oauth.CustomFetchOptions<'POST' | 'GET', unknown>,
): oauth.CustomFetchOptions<'POST' | 'GET', unknown> {
  const headers: Record<string, string> = { ...init.headers, ...lowerKeys(preset.requestHeaders) };
  let body = init.body;
  if (preset.requestBody === 'json' && body instanceof URLSearchParams) {
    body = JSON.stringify(Object.fromEntries(body.entries()));
    headers['content-type'] = 'application/json';
  }
  return { ...init, headers, body } as oauth.CustomFetchOptions<'POST' | 'GET', unknown>;
}

function lowerKeys(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key.toLowerCase(), value]));
}

/** Returns an OAuth `error` code fit to echo (RFC 6749 §5.2 characters), or undefined. */
export function safeErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(value) ? value : undefined;
}

/** Turns a network-level throw into a failure. */
export function networkFailure(err: unknown, what: string): UpstreamFailure {
  const name = (err as { name?: unknown })?.name;
  const timeout = name === 'TimeoutError' || name === 'AbortError';
  const input: FailureInput = { kind: timeout ? 'timeout' : 'network' };
  return new UpstreamFailure(
    classifyFailure(input),
    timeout ? `${what} timed out` : `${what} could not be reached`,
    { cause: err },
  );
}

/** A body past its size cap: the server's fault, not the network's. */
export class ResponseTooLarge extends Error {}

/** Reads a response body as text, refusing (`ResponseTooLarge`) one longer than `limit` bytes. */
export async function readCapped(response: Response, limit = MAX_RESPONSE_BYTES): Promise<string> {
  const length = Number(response.headers.get('content-length'));
  if (Number.isFinite(length) && length > limit) {
    await response.body?.cancel();
    throw new ResponseTooLarge('response too large');
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new ResponseTooLarge('response too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses text as a JSON object; anything else (invalid JSON, arrays, scalars) is undefined. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Classifies an HTTP answer that carries (or should carry) an OAuth error. */
function httpFailure(
  provider: ProviderName | null,
  what: string,
  status: number,
  error: unknown,
  retryAfterMs: number | undefined,
  description?: unknown,
): UpstreamFailure {
  const code = safeErrorCode(error);
  const failureClass = classifyFailure({ kind: 'http', status, error: code, provider });
  const detail = code !== undefined ? `${code}, HTTP ${status}` : `HTTP ${status}`;
  return new UpstreamFailure(failureClass, `${what} failed (${detail})`, {
    oauthError: code,
    status,
    retryAfterMs,
    description,
  });
}

/**
 * Reads an answer with provider quirks applied, and returns a fresh `Response` that
 * oauth4webapi's `process*Response` can validate. Throws an `UpstreamFailure` for every failure
 * that oauth4webapi would not see as one (HTTP 200 errors) or that is transient (5xx, 429).
 */
async function normalizeResponse(
  ctx: UpstreamContext,
  config: OAuthConfig,
  response: Response,
  what: string,
): Promise<Response> {
  let text: string;
  try {
    text = await readCapped(response);
  } catch (err) {
    if (err instanceof ResponseTooLarge) {
      throw new UpstreamFailure(
        classifyFailure({ kind: 'malformed' }),
        `${what} returned an oversized answer`,
      );
    }
    throw networkFailure(err, what);
  }
  const json = parseJsonObject(text);
  if (json !== undefined && presetOf(config)?.errorCodeField === 'code' && json.object === 'error') {
    // Notion's errors name their code `code` (status-codes); give oauth4webapi RFC 6749's `error`.
    if (json.error === undefined && typeof json.code === 'string') json.error = json.code;
    text = JSON.stringify(json);
  }
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), ctx.now());
  const pollError = safeErrorCode(json?.error);
  if (pollError === 'authorization_pending' || pollError === 'slow_down') {
    // RFC 8628 §3.5 codes mean "keep polling" whatever the status they come with (Google sends
    // authorization_pending with HTTP 428, GitHub with HTTP 200).
    throw new UpstreamFailure('transient', `${what} is still pending (${pollError})`, {
      oauthError: pollError,
      status: response.status,
      retryAfterMs,
    });
  }
  if (response.status >= 500 || response.status === 429 || response.status === 408) {
    throw httpFailure(config.provider, what, response.status, json?.error, retryAfterMs);
  }
  if (response.status !== 200 && typeof json?.error !== 'string') {
    // No OAuth error to go by (a bare 403 from Atlassian, an HTML error page): the status decides.
    throw httpFailure(config.provider, what, response.status, undefined, retryAfterMs);
  }
  if (response.status === 200 && json !== undefined) {
    // GitHub: HTTP 200 {"error":...}; Slack: HTTP 200 {"ok":false,"error":...}.
    if (json.ok === false || (typeof json.error === 'string' && typeof json.access_token !== 'string')) {
      throw httpFailure(config.provider, what, 200, json.error ?? 'unknown_error', retryAfterMs);
    }
    if (normalizeAnswer(config, json)) text = JSON.stringify(json);
  }
  return new Response(text, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Rewrites a successful answer, in place, into the RFC shape oauth4webapi validates; returns
 * whether anything changed. Each rewrite is named for the provider documentation it follows.
 */
function normalizeAnswer(config: OAuthConfig, json: Record<string, unknown>): boolean {
  const preset = presetOf(config);
  let changed = false;
  if (json.verification_uri === undefined && typeof json.verification_url === 'string') {
    // Google's device authorization answer names RFC 8628's verification_uri verification_url.
    json.verification_uri = json.verification_url;
    delete json.verification_url;
    changed = true;
  }
  if (preset?.tokenLocation === 'authed_user' && isObject(json.authed_user)) {
    // Slack user tokens come back nested in authed_user (oauth.v2.access); a refreshed user
    // token comes back at the top level with token_type "user".
    const user = json.authed_user;
    for (const field of ['access_token', 'token_type', 'scope', 'expires_in', 'refresh_token'] as const) {
      if (field in json) delete json[field];
      if (user[field] !== undefined) json[field] = user[field];
    }
    delete json.authed_user;
    changed = true;
  }
  if (typeof json.id_token === 'string') {
    const iss = unverifiedIssuer(json.id_token);
    // An ID token from a multi-tenant issuer cannot be validated against a known issuer, and one
    // whose iss is a documented alias (Google's "accounts.google.com") would fail an exact
    // comparison. keyward never uses ID tokens: drop such a one rather than fail the grant.
    if (!config.exact_issuer || (iss !== undefined && preset?.issuerAliases.includes(iss))) {
      delete json.id_token;
      changed = true;
    }
  }
  return changed;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `iss` from a JWT's payload without verifying it (only to pick a documented alias). */
function unverifiedIssuer(jwt: string): string | undefined {
  const payload = jwt.split('.')[1];
  if (payload === undefined) return undefined;
  const claims = parseJsonObject(Buffer.from(payload, 'base64url').toString('utf8'));
  return typeof claims?.iss === 'string' ? claims.iss : undefined;
}

/** Turns an oauth4webapi processing error into a failure. */
export function processingFailure(
  provider: ProviderName | null,
  err: unknown,
  what: string,
): UpstreamFailure {
  if (err instanceof UpstreamFailure) return err;
  if (err instanceof oauth.ResponseBodyError)
    return httpFailure(provider, what, err.status, err.error, undefined, err.error_description);
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const challengeError = err.cause[0]?.parameters.error;
    return httpFailure(provider, what, err.status, challengeError, undefined);
  }
  return new UpstreamFailure(
    classifyFailure({ kind: 'malformed' }),
    `${what} returned an answer keyward cannot use`,
    { cause: err },
  );
}

/**
 * Classifies a throw from an oauth4webapi `*Request` function: its own coded errors (a refused
 * URL, a bad argument) are not the network's fault; everything else is.
 */
export function sendFailure(provider: ProviderName | null, err: unknown, what: string): UpstreamFailure {
  const coded =
    err instanceof oauth.OperationProcessingError ||
    err instanceof oauth.UnsupportedOperationError ||
    (err instanceof TypeError && typeof (err as { code?: unknown }).code === 'string');
  return coded ? processingFailure(provider, err, what) : networkFailure(err, what);
}

/**
 * Calls an endpoint through `send` (an oauth4webapi `*Request` function) and validates the answer
 * with `process` (the matching `process*Response`).
 */
export async function callEndpoint<T>(
  ctx: UpstreamContext,
  config: OAuthConfig,
  endpoint: string,
  what: string,
  send: (options: oauth.TokenEndpointRequestOptions) => Promise<Response>,
  process: (response: Response, options: oauth.ProcessTokenResponseOptions) => Promise<T>,
): Promise<T> {
  let response: Response;
  try {
    response = await send(requestOptions(ctx, endpoint, config) as oauth.TokenEndpointRequestOptions);
  } catch (err) {
    throw sendFailure(config.provider, err, what);
  }
  const normalized = await normalizeResponse(ctx, config, response, what);
  const recognizedTokenTypes: oauth.RecognizedTokenTypes = {};
  for (const type of presetOf(config)?.bearerTokenTypes ?? []) {
    recognizedTokenTypes[type.toLowerCase() as Lowercase<string>] = () => {};
  }
  try {
    return await process(normalized, { recognizedTokenTypes });
  } catch (err) {
    throw processingFailure(config.provider, err, what);
  }
}

/** Calls the token endpoint (see `callEndpoint`). */
export function callTokenEndpoint(
  ctx: UpstreamContext,
  config: OAuthConfig,
  what: string,
  send: (options: oauth.TokenEndpointRequestOptions) => Promise<Response>,
  process: (
    response: Response,
    options: oauth.ProcessTokenResponseOptions,
  ) => Promise<oauth.TokenEndpointResponse>,
): Promise<oauth.TokenEndpointResponse> {
  return callEndpoint(ctx, config, config.token_endpoint, what, send, process);
}

/** The token type keyward reports: "Bearer" for bearer tokens and provider aliases of it. */
export function reportedTokenType(config: OAuthConfig, tokenType: string): string {
  const lower = tokenType.toLowerCase();
  if (lower === 'bearer' || presetOf(config)?.bearerTokenTypes.includes(lower)) return 'Bearer';
  return tokenType;
}
