/**
 * What both interactive grants share: their dependencies and how a failed login is reported
 * (as a contract error code and a sentence that says what to do next).
 */
import * as oauth from 'oauth4webapi';
import type { Logger } from 'pino';
import type { ErrorCode } from '../../shared/errors.js';
import { ApiError } from '../api-error.js';
import type { Secret } from '../secret.js';
import type { Flow, FlowRegistry } from './flow-registry.js';
import type { OAuthConfig } from './oauth-config.js';
import { safeErrorCode, type UpstreamContext, UpstreamFailure } from './upstream.js';

/** What a login flow needs from the service. */
export interface LoginDeps {
  name: string;
  config: OAuthConfig;
  /** Reads the client secret from the vault; the caller wipes it after each request. */
  clientSecret: () => Secret | undefined;
  upstream: UpstreamContext;
  log: Logger;
  registry: FlowRegistry;
  flow: Flow;
  /** Stores the tokens of the new grant under the credential's lock. */
  commit: (tokens: oauth.TokenEndpointResponse, sentAt: number) => Promise<void>;
}

/** Adds the RFC 8707 `resource` parameter when the credential has one. */
export function resourceParameters(config: OAuthConfig): Record<string, string> | undefined {
  return config.resource !== null ? { resource: config.resource } : undefined;
}

/** The most of a server's `error_description` keyward shows. */
const MAX_DESCRIPTION_CHARS = 200;

/**
 * Returns a server's `error_description` fit to show, or undefined: printable ASCII only (no
 * terminal escapes, RFC 6749 §5.2 allows no more), whitespace collapsed, long token-like runs
 * (anything that could be a secret echoed back) replaced, capped in length.
 */
export function sanitizeErrorDescription(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/"/g, "'")
    .replace(/[A-Za-z0-9._~+/=-]{32,}/g, '[...]')
    .replace(/\s+/g, ' ')
    .trim();
  if (text === '') return undefined;
  return text.length > MAX_DESCRIPTION_CHARS ? `${text.slice(0, MAX_DESCRIPTION_CHARS - 3)}...` : text;
}

/** Returns the sentence that tells a user what to do about a refused login, fitted to its error. */
function refusalHint(
  name: string,
  code: string,
  description: string | undefined,
  config?: OAuthConfig,
): string {
  const again = `run: keyward login ${name}`;
  if (code === 'invalid_redirect_uri' || /redirect/i.test(description ?? '')) {
    const port = config?.redirect_port;
    return port != null
      ? `the server does not accept the redirect URI http://127.0.0.1:${port}/callback: register that URI for the client, or remove "${name}" and add it again with --redirect-port set to the port the client is registered with`
      : `the server does not accept the redirect URI on the ephemeral port this login used (it matches ports exactly): remove "${name}" and add it again with --redirect-port set to the port the client is registered with`;
  }
  switch (code) {
    case 'access_denied':
      return `the login was declined (by you, or by the server's policy); ${again} to try again`;
    case 'invalid_scope':
      return `the server does not grant the scope "${config?.scope ?? ''}": remove "${name}" and add it again with a --scope the server lists`;
    case 'invalid_client':
    case 'unauthorized_client': {
      const document = config?.client_id.startsWith('https://') === true;
      return document
        ? 'the server does not accept the client id (a Client ID Metadata Document): check that the document is served at that URL, and whether the server supports them (client_id_metadata_document_supported); without --client-id keyward registers a client dynamically'
        : `the server does not know or accept the client "${config?.client_id ?? ''}": check --client-id, or remove "${name}" and add it again (a dynamically registered client may have been deleted at the server)`;
    }
    case 'consent_required':
    case 'login_required':
    case 'interaction_required':
      return `the server needs you to log in or consent in the browser; ${again}`;
    default:
      return again;
  }
}

/** Describes a refusal by the server, with its (sanitized) `error_description` and a fitted hint. */
function refusal(
  name: string,
  what: string,
  rawCode: unknown,
  rawDescription: unknown,
  config?: OAuthConfig,
  codeInWhat = false,
): { code: ErrorCode; message: string } {
  const code = safeErrorCode(rawCode) ?? 'error';
  const description = sanitizeErrorDescription(rawDescription);
  const quoted = description !== undefined ? `"${description}"` : undefined;
  const detail = codeInWhat ? quoted : quoted !== undefined ? `${code}: ${quoted}` : code;
  return {
    code: code === 'access_denied' ? 'LOGIN_REQUIRED' : 'UPSTREAM_ERROR',
    message: `${what}${detail !== undefined ? ` (${detail})` : ''}; ${refusalHint(name, code, description, config)}`,
  };
}

/**
 * Describes why a login failed, as a contract code and a sentence. With the credential's config,
 * a refusal's hint can name its scope, client id and redirect port.
 */
export function loginFailure(
  name: string,
  err: unknown,
  config?: OAuthConfig,
): { code: ErrorCode; message: string } {
  const again = `run: keyward login ${name}`;
  if (err instanceof oauth.AuthorizationResponseError) {
    return refusal(
      name,
      'the authorization server refused the login',
      err.error,
      err.error_description,
      config,
    );
  }
  if (err instanceof oauth.OperationProcessingError) {
    // validateAuthResponse: a wrong or missing `iss` (RFC 9207 mix-up defence) or a malformed answer.
    return {
      code: 'UPSTREAM_ERROR',
      message: `the authorization response failed validation (issuer or parameters do not match); ${again}`,
    };
  }
  if (err instanceof UpstreamFailure) {
    switch (err.failureClass) {
      case 'login_required':
        // A code exchange refused over its redirect_uri (invalid_grant) is a registration problem,
        // not a grant that ended: say which.
        if (/redirect/i.test(sanitizeErrorDescription(err.description) ?? '')) {
          return refusal(name, err.message, err.oauthError, err.description, config, true);
        }
        return { code: 'LOGIN_REQUIRED', message: `${err.message}; ${again}` };
      case 'transient':
        return { code: 'UPSTREAM_UNAVAILABLE', message: `${err.message}; try again later` };
      case 'upstream_error':
        if (err.oauthError !== undefined && err.oauthError !== 'invalid_grant') {
          return refusal(name, err.message, err.oauthError, err.description, config, true);
        }
        return { code: 'UPSTREAM_ERROR', message: err.message };
    }
  }
  if (err instanceof ApiError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: 'the login failed unexpectedly; see the daemon log' };
}
