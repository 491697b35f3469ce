/**
 * Slowloris on the socket (issue 12 item 9): a local client (a buggy or compromised MCP server of
 * the same user) opens hundreds of connections and trickles header lines without ever finishing a
 * request. Before, the daemon accepted them until it ran out of file descriptors, and a normal
 * token request could not get through for a minute or more. Now each connection must send its
 * headers within HEADERS_TIMEOUT_MS and connections are capped below the descriptor limit, so a
 * normal request gets its token once the stalled connections are cut, and the daemon lives on.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { KeywardClient } from '../client/index.js';
import {
  HEADERS_TIMEOUT_MS,
  maxConnectionsFor,
  openFileLimit,
  RESERVED_FDS,
} from '../daemon/socket-limits.js';
import { CLI, makeHome, runCli, waitForHealth } from './helpers/daemon-process.js';

const FD_LIMIT = 400;
const ATTACKERS = 700;

test('a slowloris client holding many connections does not stop a normal token request', {
  timeout: 120_000,
}, async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  // The daemon runs with few descriptors, as a service with a low LimitNOFILE would.
  const daemon = spawn(
    'sh',
    ['-c', `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`, process.execPath, CLI, 'daemon'],
    {
      env: home.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let output = '';
  daemon.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  t.after(async () => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await exited;
  });
  await waitForHealth(home.socket, 20_000, daemon);
  const add = await runCli(home, ['add', 'notes', '--api-key'], { input: 'sk-slowloris-victim\n' });
  assert.equal(add.code, 0, add.stderr);

  const attackers: net.Socket[] = [];
  let cutByDaemon = 0;
  const trickle = setInterval(() => {
    for (const socket of attackers) if (!socket.destroyed) socket.write('x-slow: 1\r\n');
  }, 500);
  t.after(() => {
    clearInterval(trickle);
    for (const socket of attackers) socket.destroy();
  });
  await Promise.all(
    Array.from(
      { length: ATTACKERS },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(home.socket);
          attackers.push(socket);
          socket.on('error', () => {});
          socket.once('close', () => {
            cutByDaemon++;
            resolve();
          });
          socket.once('connect', () => {
            socket.write('POST /v1/credentials/notes/token HTTP/1.1\r\nhost: keyward\r\n');
            resolve();
          });
        }),
    ),
  );

  // A normal caller keeps trying, as an MCP server would, with a fresh connection each time.
  const started = Date.now();
  const deadline = started + 4 * HEADERS_TIMEOUT_MS;
  let token: string | undefined;
  let lastError: unknown;
  while (token === undefined && Date.now() < deadline) {
    try {
      const client = new KeywardClient({ socketPath: home.socket, timeoutMs: 5_000 });
      token = (await client.getToken('notes')).accessToken;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  assert.equal(
    token,
    'sk-slowloris-victim',
    `no token within ${deadline - started} ms: ${String(lastError)}`,
  );
  assert.ok(cutByDaemon > 0, 'the daemon cut stalled connections');
  assert.equal(daemon.exitCode, null, `the daemon kept running\n${output}`);
  assert.doesNotMatch(output, /EMFILE/, 'the daemon never ran out of descriptors');
});

test('the connection cap stays below the descriptor limit', () => {
  assert.equal(maxConnectionsFor(undefined), 4096);
  assert.equal(maxConnectionsFor(1_048_576), 4096);
  assert.equal(maxConnectionsFor(FD_LIMIT), FD_LIMIT - RESERVED_FDS);
  assert.ok(maxConnectionsFor(64) >= 16);
  const limit = openFileLimit();
  if (process.platform === 'linux') assert.ok(limit !== undefined && limit > 0);
  assert.equal(openFileLimit('/nonexistent/limits'), undefined);
});
