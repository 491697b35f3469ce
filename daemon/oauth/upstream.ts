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
import type { ProviderName } from './providers.js';
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

/** Returns oauth4webapi request options for a call to `url`: timeout, fetch, loopback HTTP. */
export function requestOptions(
  ctx: UpstreamContext,
  url: string | null,
): oauth.HttpRequestOptions<'POST' | 'GET'> {
  return {
    signal: () => AbortSignal.timeout(ctx.timeoutMs),
    [oauth.customFetch]: (input: string, init: oauth.CustomFetchOptions<'POST' | 'GET', unknown>) =>
      ctx.fetch(input, init as RequestInit),
    // Loopback only: checked per endpoint, so discovery metadata cannot smuggle in a remote http URL.
    [oauth.allowInsecureRequests]: url !== null && allowsInsecure(url),
  };
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
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), ctx.now());
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
    if (!config.exact_issuer && json.id_token !== undefined) {
      // An ID token from a multi-tenant issuer cannot be validated against a known issuer, and
      // keyward never uses ID tokens: drop it rather than fail the grant.
      delete json.id_token;
      text = JSON.stringify(json);
    }
  }
  return new Response(text, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
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
    response = await send(requestOptions(ctx, endpoint) as oauth.TokenEndpointRequestOptions);
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
