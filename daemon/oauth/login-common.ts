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

/** Describes why a login failed, as a contract code and a sentence. */
export function loginFailure(name: string, err: unknown): { code: ErrorCode; message: string } {
  const again = `run: keyward login ${name}`;
  if (err instanceof oauth.AuthorizationResponseError) {
    const code = safeErrorCode(err.error) ?? 'error';
    if (code === 'access_denied')
      return { code: 'LOGIN_REQUIRED', message: `the login was denied (access_denied); ${again}` };
    return {
      code: 'UPSTREAM_ERROR',
      message: `the authorization server refused the login (${code}); check the scope and client id`,
    };
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
        return { code: 'LOGIN_REQUIRED', message: `${err.message}; ${again}` };
      case 'transient':
        return { code: 'UPSTREAM_UNAVAILABLE', message: `${err.message}; try again later` };
      case 'upstream_error':
        return { code: 'UPSTREAM_ERROR', message: err.message };
    }
  }
  if (err instanceof ApiError) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: 'the login failed unexpectedly; see the daemon log' };
}
