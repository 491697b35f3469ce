/**
 * Revocation by a provider API call that is not RFC 7009 (GitHub's "delete an app
 * authorization", Slack's auth.revoke), sent exactly as the preset describes it
 * (providers.ts `RevocationCall`). RFC 7009 revocation goes through oauth4webapi instead.
 */
import type { Secret } from '../secret.js';
import { classifyFailure } from './failure-class.js';
import type { OAuthConfig } from './oauth-config.js';
import type { RevocationCall } from './providers.js';
import {
  networkFailure,
  parseJsonObject,
  ResponseTooLarge,
  readCapped,
  safeErrorCode,
  type UpstreamContext,
  UpstreamFailure,
} from './upstream.js';
import { allowsInsecure } from './url-policy.js';

/** Sends `call` to `endpoint` for `token`; resolves when the provider says the token is gone. */
export async function callRevocation(
  ctx: UpstreamContext,
  config: OAuthConfig,
  call: RevocationCall,
  endpoint: string,
  token: string,
  clientSecret: Secret | undefined,
  what: string,
): Promise<void> {
  if (!endpoint.startsWith('https://') && !allowsInsecure(endpoint)) {
    throw new UpstreamFailure('upstream_error', `${what}: the revocation endpoint is not https`);
  }
  const headers: Record<string, string> = { ...call.headers };
  if (call.clientAuth === 'client_secret_basic') {
    if (clientSecret === undefined) throw new UpstreamFailure('upstream_error', `${what}: no client secret`);
    const pair = `${config.client_id}:${clientSecret.reveal()}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }
  let body: string;
  if (call.body === 'json') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({ [call.tokenField]: token });
  } else {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams({ [call.tokenField]: token }).toString();
  }
  let response: Response;
  let text: string;
  try {
    response = await ctx.fetch(endpoint, {
      method: call.method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
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
  // Slack-style APIs answer HTTP 200 {"ok":false,"error":...} when they did nothing.
  if (call.doneStatuses.includes(response.status) && json?.ok !== false) return;
  const code = safeErrorCode(json?.error);
  const failureClass = classifyFailure({
    kind: 'http',
    status: response.status,
    error: code,
    provider: config.provider,
  });
  throw new UpstreamFailure(
    failureClass,
    `${what} failed (${code !== undefined ? `${code}, ` : ''}HTTP ${response.status})`,
    {
      oauthError: code,
      status: response.status,
    },
  );
}
