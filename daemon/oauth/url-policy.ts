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

/** Reads an IPv4 dotted quad as four numbers, or null. */
function ipv4Octets(host: string): number[] | null {
  const parts = host.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

/** Tells whether an IPv4 address is not publicly routable (RFC 6890 special-purpose blocks). */
function isSpecialIpv4(o: number[]): boolean {
  const [a = 0, b = 0] = o;
  return (
    a === 0 || // "this network"
    a === 10 || // private
    a === 127 || // loopback
    (a === 100 && b >= 64 && b <= 127) || // shared address space (CGNAT)
    (a === 169 && b === 254) || // link-local (cloud metadata services live here)
    (a === 172 && b >= 16 && b <= 31) || // private
    (a === 192 && b === 168) || // private
    a >= 224 // multicast and reserved
  );
}

/** Tells whether an IPv6 literal (without brackets) is loopback, unspecified, ULA, link-local or maps such an IPv4. */
function isSpecialIpv6(host: string): boolean {
  const h = host.toLowerCase();
  if (h === '::' || h === '::1') return true;
  const mapped = /^::ffff:(.+)$/.exec(h)?.[1];
  if (mapped !== undefined) {
    // WHATWG URL writes a mapped address as hex: ::ffff:7f00:1.
    const quad = ipv4Octets(mapped);
    if (quad !== null) return isSpecialIpv4(quad);
    const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(mapped);
    if (hex === null) return true;
    const hi = Number.parseInt(hex[1] as string, 16);
    const lo = Number.parseInt(hex[2] as string, 16);
    return isSpecialIpv4([hi >> 8, hi & 255, lo >> 8, lo & 255]);
  }
  const first = Number.parseInt(h.split(':')[0] || '0', 16);
  return (
    (first & 0xfe00) === 0xfc00 || // unique local fc00::/7
    (first & 0xffc0) === 0xfe80 || // link-local fe80::/10
    (first & 0xff00) === 0xff00 // multicast
  );
}

/**
 * Tells whether a URL hostname names this machine or a private network: loopback, `localhost`
 * (and `*.localhost`), RFC 1918, link-local, CGNAT, IPv6 ULA and link-local, as literals. A DNS
 * name that resolves to such an address is not caught here (that needs a resolver-level check).
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host.startsWith('[') && host.endsWith(']')) return isSpecialIpv6(host.slice(1, -1));
  const quad = ipv4Octets(host);
  return quad !== null && isSpecialIpv4(quad);
}

/** Tells whether a URL points at this machine or a private network (see `isPrivateHost`). */
export function isLocalUrl(value: string): boolean {
  const url = parseUrl(value);
  return url !== null && isPrivateHost(url.hostname);
}

/**
 * Checks a URL that a remote server put in one of its answers (RFC 9728 protected resource
 * metadata, RFC 8414 / OIDC metadata, a registration response) and returns it as given.
 *
 * Such a URL is the server's word, not the user's. When the server the user named (`anchor`: the
 * MCP server or the issuer) is itself local, the usual rule applies (https, or http on loopback).
 * Otherwise it must be https to a non-private host: no plain-http loopback exception and no
 * loopback, private or link-local target, so a public server cannot point keyward's token
 * requests (with refresh tokens and client secrets) at a service on the user's machine or
 * network (issue 12 item 7). Throws an ApiError with the reason; callers name the source.
 */
export function requireUpstreamUrl(value: unknown, field: string, anchor: string): string {
  const checked = requireSafeUrl(value, field);
  if (isLocalUrl(anchor)) return checked;
  const url = new URL(checked);
  if (url.protocol !== 'https:' || isPrivateHost(url.hostname)) {
    throw new ApiError(
      'UPSTREAM_ERROR',
      `${field} points at a local or private address (${url.host}) though ${new URL(anchor).host} is not local`,
    );
  }
  return checked;
}
