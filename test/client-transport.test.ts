/**
 * The SDK's transport under a burst of new connections: when the daemon's accept queue is full
 * the kernel refuses a Unix-socket connect with EAGAIN; such a request never reached the daemon,
 * and the SDK retries it instead of reporting the daemon unavailable.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { requestJson } from '../client/transport.js';

/** A server with a one-slot accept queue whose event loop is blocked for `blockMs` after `ready`. */
const SERVER = `
  const http = require('node:http');
  const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"status":"ok"}'); });
  server.listen({ path: process.argv[1], backlog: 1 }, () => {
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => { const end = Date.now() + Number(process.argv[2]); while (Date.now() < end) {} process.stdout.write('unblocked\\n'); });
  });
`;

test('connects refused with EAGAIN while the accept queue is full are retried', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-busy-'));
  const socketPath = path.join(dir, 's.sock');
  const child = spawn(process.execPath, ['-e', SERVER, socketPath, '150'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));

  const agent = new http.Agent({ keepAlive: false });
  const options = { socketPath, timeoutMs: 10_000, agent };
  child.stdin.write('block\n');
  await new Promise((r) => setTimeout(r, 20));
  // Many connects while the server cannot accept: the queue (one slot) overflows at once.
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, () => requestJson<{ status: string }>(options, 'GET', '/health')),
  );
  const failed = results.filter((r) => r.status === 'rejected');
  assert.deepEqual(
    failed.map((r) => String((r as PromiseRejectedResult).reason)),
    [],
    'every request is answered once the server accepts again',
  );
  for (const r of results)
    assert.deepEqual((r as PromiseFulfilledResult<{ status: string }>).value, { status: 'ok' });
});
