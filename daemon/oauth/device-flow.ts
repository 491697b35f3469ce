/**
 * The device authorization grant (RFC 8628): asks for a user code, then polls the token endpoint
 * in the background at the server's `interval` (5 s when it names none), adding 5 s on
 * `slow_down`, continuing on `authorization_pending`, backing off when the server is unreachable
 * (§3.5), and failing on `expired_token`, `access_denied` (Entra: `authorization_declined`) or the
 * code's own expiry. Providers' status codes and field names are normalised in upstream.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as oauth from 'oauth4webapi';
import type { DeviceLoginResponse } from '../../shared/protocol.js';
import { type LoginDeps, loginFailure, resourceParameters } from './login-common.js';
import { authorizationServer, clientAuthentication, oauthClient } from './oauth-config.js';
import { callEndpoint, callTokenEndpoint, UpstreamFailure } from './upstream.js';

/** The longest wait between polls when backing off from network failures, in seconds. */
const MAX_INTERVAL_S = 60;

/** Starts the flow: requests the codes, starts polling, and returns what the user must see. */
export async function startDeviceFlow(
  deps: LoginDeps,
  defaultIntervalS: number,
): Promise<Omit<DeviceLoginResponse, 'flow_id'>> {
  const { name, config, upstream } = deps;
  const endpoint = config.device_authorization_endpoint;
  if (endpoint === null) throw new Error('no device authorization endpoint');
  const as = authorizationServer(config);
  const client = oauthClient(config);

  const parameters: Record<string, string> = { ...resourceParameters(config) };
  if (config.scope !== null) parameters.scope = config.scope;
  const secret = deps.clientSecret();
  let device: oauth.DeviceAuthorizationResponse;
  try {
    const auth = clientAuthentication(config, secret);
    device = await callEndpoint(
      upstream,
      config,
      endpoint,
      `the device authorization request for "${name}"`,
      (options) => oauth.deviceAuthorizationRequest(as, client, auth, parameters, options),
      (response) => oauth.processDeviceAuthorizationResponse(as, client, response),
    );
  } finally {
    secret?.wipe();
  }

  const expiresAt = upstream.now() + device.expires_in * 1000;
  const stopped = new AbortController();
  deps.flow.stop = () => stopped.abort();
  void poll(deps, device, expiresAt, device.interval ?? defaultIntervalS, stopped.signal);

  return {
    verification_uri: device.verification_uri,
    ...(device.verification_uri_complete !== undefined
      ? { verification_uri_complete: device.verification_uri_complete }
      : {}),
    user_code: device.user_code,
    expires_at: new Date(expiresAt).toISOString(),
  };
}

async function poll(
  deps: LoginDeps,
  device: oauth.DeviceAuthorizationResponse,
  expiresAt: number,
  initialIntervalS: number,
  signal: AbortSignal,
): Promise<void> {
  const { name, config, upstream, registry, flow, log } = deps;
  const as = authorizationServer(config);
  const client = oauthClient(config);
  const started = Date.now();
  let intervalS = initialIntervalS;
  let backoffS = intervalS;
  const fail = (code: Parameters<typeof registry.fail>[1], message: string) => {
    registry.fail(flow, code, message);
    log.warn({ credential: name, flow: 'device_code', outcome: code }, 'login failed');
  };

  while (registry.isPending(flow)) {
    try {
      await sleep(backoffS * 1000, undefined, { signal });
    } catch {
      return; // The flow was settled elsewhere (superseded, removed, daemon stopping).
    }
    if (upstream.now() >= expiresAt) {
      fail(
        'LOGIN_REQUIRED',
        `the device code expired before it was approved: run: keyward login ${name} --device`,
      );
      return;
    }
    const secret = deps.clientSecret();
    try {
      const auth = clientAuthentication(config, secret);
      const sentAt = upstream.now();
      const tokens = await callTokenEndpoint(
        upstream,
        config,
        `the device login of "${name}"`,
        (options) =>
          oauth.deviceCodeGrantRequest(as, client, auth, device.device_code, {
            ...options,
            additionalParameters: resourceParameters(config),
          }),
        (response, options) => oauth.processDeviceCodeResponse(as, client, response, options),
      );
      if (!registry.isPending(flow)) return;
      await deps.commit(tokens, sentAt);
      registry.complete(flow);
      log.info(
        { credential: name, flow: 'device_code', duration_ms: Date.now() - started },
        'login complete',
      );
      return;
    } catch (err) {
      if (err instanceof UpstreamFailure) {
        switch (err.oauthError) {
          case 'authorization_pending':
            backoffS = intervalS;
            continue;
          case 'slow_down':
            intervalS += 5;
            backoffS = intervalS;
            continue;
          case 'expired_token':
            fail(
              'LOGIN_REQUIRED',
              `the device code expired before it was approved: run: keyward login ${name} --device`,
            );
            return;
          case 'access_denied':
          case 'authorization_declined': // Microsoft Entra's name for it (v2-oauth2-device-code)
            fail(
              'LOGIN_REQUIRED',
              `the user declined the login (${err.oauthError}): run: keyward login ${name} --device`,
            );
            return;
        }
        if (err.failureClass === 'transient') {
          backoffS = Math.min(MAX_INTERVAL_S, Math.max(backoffS * 2, intervalS));
          continue;
        }
      }
      const failure = loginFailure(name, err);
      fail(failure.code, failure.message);
      return;
    } finally {
      secret?.wipe();
    }
  }
}
