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
import { encode, type FuzzRequest, KNOWN_METHODS, requestArb } from './support/fuzz-requests.js';
import { countOpenFds, PROC_AVAILABLE, readRssBytes } from './support/proc-stats.js';
import { type RawResponse, rawExchange } from './support/raw-http.js';
import { envInt, recordFaultSummary } from './support/summary.js';

const RUNS = envInt('KEYWARD_FUZZ_RUNS', 300);

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
