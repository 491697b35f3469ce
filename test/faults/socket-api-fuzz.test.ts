/**
 * Property-based fuzzing of the socket API (fast-check): random routes (real ones with odd names,
 * unknown ones, traversal and encoding tricks), methods, headers, content types, bodies (near
 * valid, random JSON, garbage, truncated, around the 64 KiB limit) sent as raw bytes, and raw
 * garbage that is not HTTP at all. Properties: every answer is an HTTP answer; no 5xx other than
 * the documented upstream ones; every JSON error has the contract's shape with a code whose status
 * it carries; a request with Origin or Referer is refused (403, or 400 when its request line is
 * unusable); bodies over 64 KiB are 413; the daemon stays up and its memory and open descriptors
 * stay bounded.
 *
 * KEYWARD_FUZZ_RUNS sets the number of requests per property (default 300; `npm run test:faults`
 * runs 2000). fast-check prints the seed and the shrunk request of any failure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isErrorCode } from '../../shared/errors.js';
import { MAX_BODY_BYTES } from '../../shared/protocol.js';
import { type ChaosServer, startChaosServer } from '../fixtures/chaos-server.js';
import {
  type DaemonProcess,
  makeHome,
  socketRequest,
  startDaemon,
  type TestHome,
} from '../helpers/daemon-process.js';
import { countOpenFds, PROC_AVAILABLE, readRssBytes } from './support/proc-stats.js';
import { type RawResponse, rawExchange } from './support/raw-http.js';
import { envInt, recordFaultSummary } from './support/summary.js';

const RUNS = envInt('KEYWARD_FUZZ_RUNS', 300);
const KNOWN_NAMES = ['fuzz-key', 'fuzz-oauth', 'no-such-credential'];
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
const KNOWN_METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'];
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

interface FuzzRequest {
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

const requestArb: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.record({
    method: methodArb,
    path: pathArb,
    headers: headersArb,
    contentType: contentTypeArb,
    body: bodyArb,
  }),
  wellFormedArb,
);

function encode(req: FuzzRequest): Buffer {
  const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
  const lines = [`${req.method} ${req.path} HTTP/1.1`, 'host: localhost'];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  if (req.contentType !== undefined) lines.push(`content-type: ${req.contentType}`);
  if (body !== undefined) lines.push(`content-length: ${body.length}`);
  lines.push('connection: close', '', '');
  const head = Buffer.from(lines.join('\r\n'), 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

/** The contract's checks on one answer; returns the problem, or undefined. */
function violation(req: FuzzRequest, res: RawResponse): string | undefined {
  if (res.status < 100) return 'the daemon closed the connection without an HTTP answer';
  const isJson = (res.headers['content-type'] ?? '').startsWith('application/json');
  let body: any;
  if (isJson && req.method !== 'HEAD') {
    try {
      body = JSON.parse(res.body);
    } catch {
      return `a JSON answer that does not parse: ${res.body.slice(0, 80)}`;
    }
  }
  if (res.status >= 500) {
    const code = body?.error?.code;
    if (!(res.status === 502 || res.status === 503) || !/^UPSTREAM_/.test(String(code))) {
      return `an undocumented ${res.status}: ${res.body.slice(0, 200)}`;
    }
  }
  if (res.status >= 400 && body !== undefined) {
    const code = body?.error?.code;
    if (!isErrorCode(code) || typeof body.error.message !== 'string') {
      return `an error without the contract's shape: ${res.body.slice(0, 200)}`;
    }
    if (ERROR_CODES[code].status !== res.status) return `${code} sent with HTTP ${res.status}`;
  }
  const browser = req.headers.some(([name]) => name === 'origin' || name === 'referer');
  // 403 unless the request line itself was unusable (a 400 before any hook ran): never served.
  if (
    browser &&
    KNOWN_METHODS.includes(req.method) &&
    body !== undefined &&
    ![400, 403].includes(res.status)
  ) {
    return `a request with Origin/Referer got ${res.status}, not 403`;
  }
  const oversized = req.body !== undefined && Buffer.byteLength(req.body) > MAX_BODY_BYTES;
  if (oversized && !browser && req.method === 'POST' && res.status < 400) {
    return `a ${Buffer.byteLength(req.body ?? '')}-byte body was accepted`;
  }
  return undefined;
}

describe('socket API fuzzing', { timeout: RUNS * 400 + 60_000 }, () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let chaos: ChaosServer;
  let adminToken: string;
  const statuses: Record<string, number> = {};
  let requests = 0;
  let garbage = 0;
  let rssBefore = 0;
  let fdsBefore = 0;

  const restoreFixtures = async () => {
    const admin = { authorization: `Bearer ${adminToken}` };
    await socketRequest(home.socket, 'POST', '/v1/policy', { body: { policy: 'open' }, headers: admin });
    await socketRequest(home.socket, 'POST', '/v1/credentials', {
      body: { name: 'fuzz-key', kind: 'api_key', secret: 'sk-fuzz-0123456789' },
      headers: admin,
    });
    await socketRequest(home.socket, 'POST', '/v1/credentials', {
      body: { name: 'fuzz-oauth', kind: 'oauth', client_id: 'fuzz', ...chaos.endpoints('fuzz', 3600) },
      headers: admin,
    });
  };

  before(async () => {
    chaos = await startChaosServer();
    home = makeHome({ KEYWARD_LOG_LEVEL: 'warn' });
    daemon = await startDaemon(home);
    adminToken = fs.readFileSync(path.join(home.home, 'admin.token'), 'utf8').trim();
    await restoreFixtures();
    if (PROC_AVAILABLE) {
      rssBefore = readRssBytes(daemon.child.pid as number);
      fdsBefore = countOpenFds(daemon.child.pid as number);
    }
  });

  after(async () => {
    await daemon?.stop();
    await chaos?.close();
    home?.cleanup();
  });

  test('random requests get contract-shaped answers and never an undocumented 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (req) => {
        const res = await rawExchange(home.socket, encode(req));
        requests += 1;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const problem = violation(req, res);
        if (requests % 25 === 0 || req.path.includes('policy') || req.method === 'DELETE')
          await restoreFixtures();
        assert.equal(problem, undefined, problem);
        assert.equal(daemon.child.exitCode, null, 'the daemon exited');
      }),
      { numRuns: RUNS },
    );
  });

  test('bytes that are not HTTP never take the daemon down', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }),
          fc
            .string({ maxLength: 300 })
            .map((s) => new TextEncoder().encode(`POST /v1/health HTTP/1.1\r\n${s}\r\n\r\n`)),
          fc
            .constantFrom(
              'GET /v1/health HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
              'POST /v1/credentials HTTP/1.1\r\ncontent-length: -1\r\n\r\n',
              `GET /v1/health HTTP/1.1\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
              'GET /v1/health HTTP/9.9\r\n\r\n',
            )
            .map((s) => new TextEncoder().encode(s)),
        ),
        async (bytes) => {
          const res = await rawExchange(home.socket, Buffer.from(bytes), { halfClose: true });
          garbage += 1;
          assert.ok(
            res.status === 0 || res.status < 500,
            `garbage got HTTP ${res.status}: ${res.body.slice(0, 200)}`,
          );
          assert.equal(daemon.child.exitCode, null, 'the daemon exited');
        },
      ),
      { numRuns: Math.max(50, Math.round(RUNS / 4)) },
    );
    assert.equal((await socketRequest(home.socket, 'GET', '/v1/health')).status, 200);
  });

  test('the daemon is still serving, with bounded memory and descriptors', {
    skip: !PROC_AVAILABLE && 'needs /proc',
  }, async () => {
    const pid = daemon.child.pid as number;
    assert.equal((await socketRequest(home.socket, 'GET', '/v1/health')).status, 200);
    const token = await socketRequest(home.socket, 'POST', '/v1/credentials/fuzz-key/token', { body: {} });
    assert.equal(token.status, 200);
    const rssGrowth = readRssBytes(pid) - rssBefore;
    const fds = countOpenFds(pid);
    recordFaultSummary('fuzz', {
      requests,
      garbage,
      statuses,
      rssGrowthMiB: Math.round((rssGrowth / 2 ** 20) * 10) / 10,
      fdsBefore,
      fdsAfter: fds,
    });
    assert.ok(rssGrowth < 64 * 2 ** 20, `RSS grew by ${Math.round(rssGrowth / 2 ** 20)} MiB`);
    assert.ok(fds <= fdsBefore + 16, `open descriptors went from ${fdsBefore} to ${fds}`);
  });
});
