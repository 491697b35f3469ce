/**
 * Reading metadata documents from servers keyward does not yet trust: RFC 9728 protected resource
 * metadata, RFC 8414 / OpenID Connect authorization server metadata and registration answers.
 * Every read has the daemon's timeout, follows no redirect, and stops at a size cap (a hostile or
 * broken server cannot make the daemon buffer an endless body). Authorization server metadata is
 * looked for where the MCP authorization spec (2025-11-25) says, in its order.
 */
import * as oauth from 'oauth4webapi';
import { ApiError } from '../api-error.js';
import { ResponseTooLarge, readCapped, type UpstreamContext } from './upstream.js';

/** The most of a metadata or registration answer keyward reads. */
export const MAX_METADATA_BYTES = 256 * 1024;

/** An answer read with `fetchCapped`. */
export interface CappedAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** Fetches `url` with the daemon's timeout, without following redirects, reading at most a cap. */
export async function fetchCapped(
  ctx: UpstreamContext,
  url: string,
  init: RequestInit,
  what: string,
  readBody: (status: number) => boolean = () => true,
): Promise<CappedAnswer> {
  const unavailable = (err: unknown) => {
    const name = (err as { name?: unknown })?.name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    return new ApiError(
      'UPSTREAM_UNAVAILABLE',
      `${what} ${timedOut ? 'timed out' : 'could not be reached'}; check the URL or try again later`,
    );
  };
  let response: Response;
  try {
    response = await ctx.fetch(url, {
      ...init,
      redirect: 'manual',
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (err) {
    throw unavailable(err);
  }
  let text = '';
  if (!readBody(response.status)) {
    // An unprotected MCP server may answer with an event stream that never ends: do not wait on it.
    await response.body?.cancel().catch(() => {});
  } else {
    try {
      text = await readCapped(response, MAX_METADATA_BYTES);
    } catch (err) {
      if (err instanceof ResponseTooLarge) {
        throw new ApiError('UPSTREAM_ERROR', `${what} answered with more than ${MAX_METADATA_BYTES} bytes`);
      }
      throw unavailable(err);
    }
  }
  return { status: response.status, headers: response.headers, text };
}

/**
 * Returns where an issuer's metadata may live, in the MCP authorization spec's order: RFC 8414
 * path insertion, OpenID Connect path insertion, OpenID Connect path appending. An issuer without
 * a path has two (RFC 8414, then OpenID Connect Discovery 1.0 §4).
 */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '') {
    return [
      `${url.origin}/.well-known/oauth-authorization-server`,
      `${url.origin}/.well-known/openid-configuration`,
    ];
  }
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

/**
 * Fetches and validates authorization server metadata, trying each location in turn and moving
 * on past any answer that is not metadata (a 404, a WAF's 403, a CDN's 5xx, an HTML page), as
 * deployed servers need. Metadata that names another issuer is refused at once (RFC 8414 §3.3: it
 * may be an impersonation). When nothing is found: UPSTREAM_UNAVAILABLE if any location failed
 * transiently (unreachable, 5xx, 429), else UPSTREAM_ERROR.
 */
export async function fetchAuthorizationServerMetadata(
  ctx: UpstreamContext,
  issuer: string,
): Promise<oauth.AuthorizationServer> {
  const issuerUrl = new URL(issuer);
  let transient: ApiError | undefined;
  for (const location of authorizationServerMetadataUrls(issuer)) {
    let answer: CappedAnswer;
    try {
      answer = await fetchCapped(
        ctx,
        location,
        { headers: { accept: 'application/json' } },
        `authorization server metadata at ${location}`,
      );
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UPSTREAM_UNAVAILABLE') {
        transient = err;
        continue;
      }
      throw err;
    }
    if (answer.status !== 200) {
      if (answer.status >= 500 || answer.status === 429) {
        transient = new ApiError(
          'UPSTREAM_UNAVAILABLE',
          `discovery at ${issuer} failed (HTTP ${answer.status} at ${location}); try again later`,
        );
      }
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(answer.text);
    } catch {
      continue; // an HTML page from a front that answers 200 to everything
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) continue;
    try {
      const response = new Response(answer.text, {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
      return await oauth.processDiscoveryResponse(issuerUrl, response);
    } catch {
      throw new ApiError(
        'UPSTREAM_ERROR',
        `the authorization server metadata at ${location} is invalid or names another issuer than ${issuer}`,
      );
    }
  }
  throw transient ?? new ApiError('UPSTREAM_ERROR', `no authorization server metadata found for ${issuer}`);
}
