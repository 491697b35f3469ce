import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type PeerCred, peerCredSupport, readPeerCred } from '../daemon/peer-cred.js';

// A uid and gid that exist on Debian and most Linux systems (nobody / nogroup) and are never ours.
const OTHER_ID = 65534;
const isLinux = process.platform === 'linux';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const nodeBinary = realpathSync(process.execPath);

// Connects to the socket given as the first argument and leaves as soon as the server speaks.
const CHILD_CLIENT = `
const socket = require('node:net').connect(process.argv[1]);
socket.on('data', () => socket.end());
socket.on('error', (error) => { console.error(error.message); process.exit(2); });
`;

let dir: string;
let socketPath: string;
let server: Server;
const waiting: Array<(cred: PeerCred | null) => void> = [];

/** Waits for the next connection and returns what readPeerCred saw on the server side. */
function nextPeer(): Promise<PeerCred | null> {
  return new Promise((resolve) => waiting.push(resolve));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyward-peercred-'));
  socketPath = join(dir, 'peer.sock');
  server = createServer((socket: Socket) => {
    const cred = readPeerCred(socket);
    // Some tests hang up at once; a reset on the server side is expected then, not a failure.
    socket.on('error', () => {});
    socket.end('bye');
    waiting.shift()?.(cred);
  });
  server.listen(socketPath);
  await once(server, 'listening');
});

after(async () => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs CHILD_CLIENT in a new node process and returns the peer the server saw and the child's pid. */
async function peerOfChild(options: { uid?: number; gid?: number } = {}) {
  const seen = nextPeer();
  const child = spawn(process.execPath, ['-e', CHILD_CLIENT, socketPath], {
    ...options,
    cwd: '/',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `child client failed: ${stderr}`);
  return { cred: await seen, pid: child.pid };
}

test('the addon is built and loads on Linux (a broken build must fail CI, not degrade silently)', (t) => {
  if (!isLinux) {
    t.skip('peer credentials are asserted available on Linux only');
    return;
  }
  const support = peerCredSupport();
  assert.equal(support.available, true, `peer credentials unavailable: ${support.reason}`);
  assert.equal(support.reason, undefined);
});

test('an in-process client is reported with our uid, gid, pid and the node binary', {
  timeout: 10_000,
}, async () => {
  const seen = nextPeer();
  const client = connect(socketPath);
  const cred = await seen;
  client.destroy();
  assert.ok(cred, 'readPeerCred returned null on a supported platform');
  assert.equal(cred.uid, process.getuid?.());
  assert.equal(cred.gid, process.getgid?.());
  assert.equal(cred.pid, process.pid);
  if (isLinux) assert.equal(cred.exe, nodeBinary);
});

test('a client in a child process is reported with the child pid, not ours', {
  timeout: 10_000,
}, async () => {
  const { cred, pid } = await peerOfChild();
  assert.ok(cred, 'readPeerCred returned null on a supported platform');
  assert.equal(cred.pid, pid);
  assert.notEqual(cred.pid, process.pid);
  assert.equal(cred.uid, process.getuid?.());
});

test('a client running as another uid is reported with that uid', { timeout: 10_000 }, async (t) => {
  if (!isRoot) {
    t.skip('needs root to start a client as another uid');
    return;
  }
  // Loosen the socket on purpose, as the contract's attack test does: only the uid check is left.
  chmodSync(dir, 0o755);
  chmodSync(socketPath, 0o666);
  const { cred, pid } = await peerOfChild({ uid: OTHER_ID, gid: OTHER_ID });
  assert.ok(cred, 'readPeerCred returned null on a supported platform');
  assert.equal(cred.uid, OTHER_ID);
  assert.equal(cred.gid, OTHER_ID);
  assert.equal(cred.pid, pid);
  // Root may read any process's /proc/<pid>/exe, so the audit log gets the path here too.
  if (isLinux) assert.equal(cred.exe, nodeBinary);
});

test('a TCP connection yields null, never the kernel overflow uid', { timeout: 10_000 }, async () => {
  const tcp = createServer();
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const address = tcp.address();
  assert.ok(address && typeof address === 'object');
  const accepted = once(tcp, 'connection') as Promise<[Socket]>;
  const client = connect(address.port, '127.0.0.1');
  const [socket] = await accepted;
  try {
    assert.equal(readPeerCred(socket), null);
  } finally {
    socket.destroy();
    client.destroy();
    tcp.close();
  }
});

test('a socket whose handle is gone yields null instead of throwing', { timeout: 10_000 }, async () => {
  const client = connect(socketPath);
  await once(client, 'connect');
  client.destroy();
  assert.equal(readPeerCred(client), null);
});
