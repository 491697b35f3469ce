/**
 * The attack ssh-agent's regression tests try: the socket loosened to world-writable (and its
 * directories to world-traversable), and a process of another user connecting. The real daemon
 * must cut it off before answering anything, and the refusal must be in the audit log. CI runs as
 * root, so the test starts the other user's process itself (uid/gid 65534, nobody).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../daemon/log.js';
import { type PeerCred, peerCredSupport } from '../daemon/peer-cred.js';
import { guardConnections, type PeerRefusal, peerOf } from '../daemon/peer-guard.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const NOBODY = 65534;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const supported = process.platform === 'linux' && peerCredSupport().available;

// Connects, sends one request and reports whether it connected and what came back.
const PROBE = `
const socket = require('node:net').connect(process.argv[1]);
let connected = false;
let data = '';
const report = (error) => { console.log(JSON.stringify({ connected, data, error })); process.exit(0); };
socket.on('connect', () => {
  connected = true;
  socket.write('GET /v1/health HTTP/1.1\\r\\nhost: keyward\\r\\nconnection: close\\r\\n\\r\\n');
});
socket.on('data', (chunk) => { data += chunk; });
socket.on('error', (error) => report(error.code));
socket.on('close', () => report(null));
`;

interface ProbeResult {
  connected: boolean;
  data: string;
  error: string | null;
  pid: number;
}

async function probe(socket: string, ids: { uid: number; gid: number } | undefined): Promise<ProbeResult> {
  const child = spawn(process.execPath, ['-e', PROBE, socket], {
    ...(ids ?? {}),
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `probe failed: ${err}`);
  return { ...(JSON.parse(out) as Omit<ProbeResult, 'pid'>), pid: child.pid as number };
}

describe('a peer of another uid on a loosened socket', {
  skip: !(isRoot && supported) && 'needs root on Linux with the peer-credentials addon',
}, () => {
  let home: TestHome;
  let daemon: DaemonProcess;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    // Loosen everything on the way to the socket, as a careless chmod or a hostile tool would.
    const run = path.dirname(home.socket);
    fs.chmodSync(path.dirname(run), 0o755);
    fs.chmodSync(run, 0o755);
    fs.chmodSync(home.socket, 0o777);
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
  });

  test('is cut off without an answer, while our own uid is served on the same socket', async () => {
    const mine = await probe(home.socket, undefined);
    assert.equal(mine.connected, true);
    assert.match(mine.data, /^HTTP\/1\.1 200 /);

    const other = await probe(home.socket, { uid: NOBODY, gid: NOBODY });
    // It got through the file modes (connected), so what stopped it was the uid check.
    assert.equal(other.connected, true, `nobody could not even connect: ${other.error}`);
    assert.equal(other.data, '', 'the daemon answered another user');
    assert.match(daemon.output(), /refused a connection from another user/);

    const audit = await runCli(home, ['audit', '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    const refused = audit.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((e) => e.event === 'connection.refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].outcome, 'denied');
    assert.equal(refused[0].code, 'FORBIDDEN');
    assert.equal(refused[0].target, 'other-uid');
    assert.equal(refused[0].peer.uid, NOBODY);
    assert.equal(refused[0].peer.pid, other.pid);
    assert.equal(refused[0].peer.exe, fs.realpathSync(process.execPath));

    // The CLI, for its part, sends nothing through a socket others may write to (client/socket-trust.ts).
    const refusedCli = await runCli(home, ['audit', '--verify']);
    assert.match(refusedCli.stderr, /^keyward: FORBIDDEN: /);
    fs.chmodSync(path.dirname(home.socket), 0o700);
    fs.chmodSync(home.socket, 0o600);

    const verify = await runCli(home, ['audit', '--verify']);
    assert.equal(verify.code, 0, verify.stdout);
  });
});

describe('guardConnections on a plain server', {
  skip: !supported && 'needs the peer-credentials addon',
}, () => {
  const uid = process.getuid?.() as number;

  /** Starts a guarded echo server allowing `allowed`, connects once, and reports what happened. */
  async function connectOnce(allowed: number) {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'kw-guard-'));
    const socketPath = path.join(dir, 'guard.sock');
    const logged: string[] = [];
    const refusals: Array<{ peer: PeerCred | null; reason: PeerRefusal }> = [];
    const seen: Array<{ peer: PeerCred | undefined; destroyed: boolean }> = [];
    const server = net.createServer((socket) => {
      seen.push({ peer: peerOf(socket), destroyed: socket.destroyed });
      if (!socket.destroyed) socket.end('hello');
    });
    const log = createLogger({ level: 'warn', destination: { write: (line: string) => logged.push(line) } });
    const active = guardConnections(server, {
      log,
      uid: allowed,
      onRefused: (peer, reason) => refusals.push({ peer, reason }),
    });
    server.listen(socketPath);
    await once(server, 'listening');
    try {
      const client = net.connect(socketPath);
      let data = '';
      client.on('data', (d: Buffer) => {
        data += d.toString();
      });
      client.on('error', () => {});
      await once(client, 'close');
      return { active, data, refusals, seen, logged };
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  test('lets its own uid through and attaches the peer to the socket', async () => {
    const result = await connectOnce(uid);
    assert.equal(result.active, true);
    assert.equal(result.data, 'hello');
    assert.deepEqual(result.refusals, []);
    assert.equal(result.seen[0]?.destroyed, false);
    assert.equal(result.seen[0]?.peer?.pid, process.pid);
    assert.equal(result.seen[0]?.peer?.uid, uid);
  });

  test('cuts off any other uid before any other listener can use the connection, and reports it', async () => {
    const result = await connectOnce(uid + 1);
    assert.equal(result.data, '');
    // Listeners after the guard still run, but only ever see a destroyed socket with no peer.
    assert.deepEqual(result.seen, [{ peer: undefined, destroyed: true }]);
    assert.equal(result.refusals.length, 1);
    assert.equal(result.refusals[0]?.reason, 'other-uid');
    assert.equal(result.refusals[0]?.peer?.pid, process.pid);
    assert.match(result.logged.join(''), /refused a connection from another user/);
  });
});
