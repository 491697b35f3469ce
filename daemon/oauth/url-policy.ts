/**
 * Which URLs keyward talks to: `https:` everywhere, plain `http:` only on loopback (a local
 * development or test server), as architecture.md "Security model" requires.
 */
import { ApiError } from '../api-error.js';

/** Tells whether a URL hostname is a loopback host: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true;
  const octets = host.split('.');
  return (
    octets.length === 4 && octets[0] === '127' && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)
  );
}

/** Tells whether oauth4webapi must be allowed plain HTTP for this URL (loopback `http:` only). */
export function allowsInsecure(url: string | URL): boolean {
  const parsed = typeof url === 'string' ? parseUrl(url) : url;
  return parsed !== null && parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname);
}

/** Parses a URL, or returns null (`URL.parse` needs Node 22). */
export function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/**
 * Checks an endpoint or issuer URL and returns it as given (an issuer identifier is compared
 * byte for byte, so it is not normalised); throws INVALID_REQUEST naming `field`.
 */
export function requireSafeUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) {
    throw new ApiError('INVALID_REQUEST', `${field} must be an absolute https URL`);
  }
  const url = parseUrl(value);
  if (url === null) throw new ApiError('INVALID_REQUEST', `${field} is not a valid URL`);
  if (url.username !== '' || url.password !== '') {
    throw new ApiError('INVALID_REQUEST', `${field} must not carry credentials`);
  }
  if (url.hash !== '') throw new ApiError('INVALID_REQUEST', `${field} must not have a fragment`);
  if (url.protocol === 'https:') return value;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return value;
  throw new ApiError(
    'INVALID_REQUEST',
    `${field} must use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)`,
  );
}
