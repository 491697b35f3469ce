/**
 * What the socket API fuzzing sends: fast-check arbitraries for requests (real routes with odd
 * names, unknown routes, traversal and encoding tricks; methods; headers; content types; bodies
 * near valid, random JSON, garbage, truncated, around the 64 KiB limit) and their encoding as raw
 * HTTP/1.1 bytes.
 */
import fc from 'fast-check';
import { MAX_BODY_BYTES } from '../../../shared/protocol.js';

/** Credential names the fuzzed daemon holds (and one it does not). */
export const KNOWN_NAMES = ['fuzz-key', 'fuzz-oauth', 'no-such-credential'];
/** URLs that fail fast without leaving the machine: refused by policy, or a closed loopback port. */
const SAFE_URLS = [
  'http://127.0.0.1:9',
  'https://127.0.0.1:9/issuer',
  'http://localhost:9/x',
  'http://example.invalid/',
  'not a url',
  'javascript:alert(1)',
  '',
];

const nameArb = fc.oneof(
  fc.constantFrom(...KNOWN_NAMES),
  fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,70}$/),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom('..', '.', '%2e%2e', 'A', '-x', 'a%00b', '%', '%ZZ', 'a%2Fb', '%20', 'x'.repeat(300)),
);

const pathArb = fc
  .tuple(
    fc.oneof(
      nameArb.map((n) => `/v1/credentials/${n}/token`),
      nameArb.map((n) => `/v1/credentials/${n}/invalidate`),
      nameArb.map((n) => `/v1/credentials/${n}/login`),
      nameArb.map((n) => `/v1/credentials/${n}`),
      nameArb.map((n) => `/v1/clients/${n}`),
      fc.string({ maxLength: 40 }).map((s) => `/v1/flows/${encodeURIComponent(s)}`),
      fc.constantFrom(
        '/v1/credentials',
        '/v1/health',
        '/v1/status',
        '/v1/policy',
        '/v1/clients',
        '/v1/audit/verify',
        '/v1/vault/unlock',
        '/v1/vault/rotate-key',
        '/',
        '/v2/health',
        '/v1',
        '/v1/',
        '//v1/health',
        '/v1/../v1/status',
        '/v1/health/',
        '*',
      ),
      fc.array(fc.stringMatching(/^[A-Za-z0-9._~%-]{0,12}$/), { maxLength: 6 }).map((s) => `/${s.join('/')}`),
    ),
    fc.option(fc.stringMatching(/^[A-Za-z0-9=&%._-]{0,30}$/), { nil: undefined }),
  )
  .map(([p, query]) => (query === undefined ? p : `${p}?${query}`));

/** Methods Node's HTTP parser knows; others are refused (400) before any route is looked at. */
export const KNOWN_METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'];
const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'POST', 'DELETE') },
  { weight: 2, arbitrary: fc.constantFrom(...KNOWN_METHODS) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/) },
);

/** Objects close to the real request bodies, with odd values and unknown fields. */
const nearValidBody = fc.record(
  {
    name: nameArb,
    kind: fc.constantFrom('api_key', 'oauth', 'ssh', ''),
    secret: fc.string({ maxLength: 100 }),
    token_type: fc.constantFrom('Bearer', 'DPoP', 'bad type', ''),
    min_ttl: fc.oneof(fc.integer({ min: -5, max: 40_000_000 }), fc.double(), fc.constant('60')),
    access_token: fc.string({ maxLength: 100 }),
    flow: fc.constantFrom('authorization_code', 'device_code', 'implicit'),
    revoke: fc.oneof(fc.boolean(), fc.constant('yes')),
    policy: fc.constantFrom('open', 'strict', 'closed'),
    key_store: fc.constantFrom('file', 'passphrase', 'vault'),
    passphrase: fc.string({ maxLength: 40 }),
    client_id: fc.string({ maxLength: 40 }),
    scope: fc.string({ maxLength: 40 }),
    issuer: fc.constantFrom(...SAFE_URLS),
    token_url: fc.constantFrom(...SAFE_URLS),
    authorization_url: fc.constantFrom(...SAFE_URLS),
    mcp_server: fc.constantFrom(...SAFE_URLS),
    provider: fc.constantFrom('nope', 'GitHub', ''),
    allow: fc.array(nameArb, { maxLength: 3 }),
    surprise: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

const bodyArb: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant('{}'),
  nearValidBody.map((b) => JSON.stringify(b)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  nearValidBody.map((b) => JSON.stringify(b).slice(0, 7)),
  fc
    .integer({ min: MAX_BODY_BYTES - 64, max: MAX_BODY_BYTES + 4096 })
    .map((n) => JSON.stringify({ pad: 'x'.repeat(Math.max(0, n - 10)) })),
);

const headerValue = fc.string({ maxLength: 60 }).filter((v) => !/[\r\n]/.test(v));
const headersArb = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        'origin',
        'referer',
        'authorization',
        'accept',
        'x-forwarded-for',
        'cookie',
        'user-agent',
      ),
      fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
    ),
    fc.oneof(headerValue, fc.constantFrom('Bearer kwc_nope', 'Bearer ', 'Basic Zm9vOmJhcg==', 'null')),
  ),
  { maxLength: 4 },
);

const contentTypeArb = fc.option(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/JSON',
  ),
  { nil: undefined },
);

/** One fuzzed request. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  contentType: string | undefined;
  body: string | undefined;
}

const validName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
/** Well-formed requests to real routes, so that the handlers behind validation run too. */
const wellFormedArb: fc.Arbitrary<FuzzRequest> = fc
  .oneof(
    fc.constant({ method: 'GET', path: '/v1/health', body: undefined }),
    fc.constant({ method: 'GET', path: '/v1/status', body: undefined }),
    fc.constant({ method: 'GET', path: '/v1/clients', body: undefined }),
    fc.constant({ method: 'GET', path: '/v1/policy', body: undefined }),
    fc.constant({ method: 'POST', path: '/v1/audit/verify', body: '{}' }),
    fc
      .record({
        name: fc.constantFrom(...KNOWN_NAMES),
        minTtl: fc.option(fc.nat(100_000), { nil: undefined }),
      })
      .map(({ name, minTtl }) => ({
        method: 'POST',
        path: `/v1/credentials/${name}/token`,
        body: JSON.stringify(minTtl === undefined ? {} : { min_ttl: minTtl }),
      })),
    fc
      .record({ name: fc.constantFrom(...KNOWN_NAMES), token: fc.string({ minLength: 1, maxLength: 50 }) })
      .map(({ name, token }) => ({
        method: 'POST',
        path: `/v1/credentials/${name}/invalidate`,
        body: JSON.stringify({ access_token: token }),
      })),
    fc
      .record({
        name: fc.constantFrom(...KNOWN_NAMES),
        flow: fc.constantFrom('authorization_code', 'device_code'),
      })
      .map(({ name, flow }) => ({
        method: 'POST',
        path: `/v1/credentials/${name}/login`,
        body: JSON.stringify({ flow }),
      })),
    fc
      .record({ name: validName, secret: fc.string({ minLength: 1, maxLength: 64 }) })
      .map(({ name, secret }) => ({
        method: 'POST',
        path: '/v1/credentials',
        body: JSON.stringify({ name, kind: 'api_key', secret }),
      })),
    fc.record({ name: validName, url: fc.constantFrom(...SAFE_URLS) }).map(({ name, url }) => ({
      method: 'POST',
      path: '/v1/credentials',
      body: JSON.stringify({ name, kind: 'oauth', client_id: 'x', token_url: url, authorization_url: url }),
    })),
    validName.map((name) => ({
      method: 'DELETE',
      path: `/v1/credentials/${name}`,
      body: '{"revoke":false}',
    })),
    fc.record({ name: validName, allow: fc.array(validName, { minLength: 1, maxLength: 3 }) }).map((b) => ({
      method: 'POST',
      path: '/v1/clients',
      body: JSON.stringify(b),
    })),
  )
  .chain((base) =>
    fc.record({
      method: fc.constant(base.method),
      path: fc.constant(base.path),
      headers: fc.oneof({ weight: 4, arbitrary: fc.constant([] as Array<[string, string]>) }, headersArb),
      contentType: fc.constant(base.body === undefined ? undefined : 'application/json'),
      body: fc.constant(base.body),
    }),
  );

/** Any request: half random, half well-formed requests to real routes. */
export const requestArb: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.record({
    method: methodArb,
    path: pathArb,
    headers: headersArb,
    contentType: contentTypeArb,
    body: bodyArb,
  }),
  wellFormedArb,
);

/** Encodes a request as HTTP/1.1 bytes that ask the daemon to close after answering. */
export function encode(req: FuzzRequest): Buffer {
  const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
  const lines = [`${req.method} ${req.path} HTTP/1.1`, 'host: localhost'];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  if (req.contentType !== undefined) lines.push(`content-type: ${req.contentType}`);
  if (body !== undefined) lines.push(`content-length: ${body.length}`);
  lines.push('connection: close', '', '');
  const head = Buffer.from(lines.join('\r\n'), 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}
