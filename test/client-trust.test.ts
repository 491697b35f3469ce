/**
 * The CLI and the SDK check whom they talk to (issue 12 item 3): a listener another user put in
 * the socket's place, or in a socket directory others can write, must receive nothing, not the
 * admin token, not a client token. Each attack runs the real CLI and the real SDK against a
 * listener that records every byte; as root the test can hand the socket to uid 65534 (nobody).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { KeywardClient, KeywardError } from '../client/index.js';
import { assertTrustedSocket } from '../client/socket-trust.js';
import { makeHome, runCli, startDaemon } from './helpers/daemon-process.js';

const NOBODY = 65534;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** A listener that records what connects and what it is sent, and never answers. */
interface Recorder {
  socket: string;
  connections: number;
  bytes(): string;
  close(): Promise<void>;
}

async function record(socket: string): Promise<Recorder> {
  let connections = 0;
  const received: Buffer[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    connections++;
    open.add(conn);
    conn.on('data', (chunk: Buffer) => received.push(chunk));
    conn.on('close', () => open.delete(conn));
    conn.on('error', () => {});
    // Answer enough HTTP that a trusting client finishes instead of waiting for its timeout.
    conn.once('data', () =>
      conn.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'),
    );
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    get connections() {
      return connections;
    },
    bytes: () => Buffer.concat(received).toString('latin1'),
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of open) conn.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A temp home with an admin token the CLI would send, and a socket directory `run/` (0700). */
function setup(t: { after(fn: () => void | Promise<void>): void }) {
  const home = makeHome();
  t.after(() => home.cleanup());
  fs.mkdirSync(home.home, { mode: 0o700 });
  fs.writeFileSync(path.join(home.home, 'admin.token'), 'kwa_admin-token-that-must-not-leak\n', {
    mode: 0o600,
  });
  const runDir = path.dirname(home.socket);
  fs.mkdirSync(runDir, { mode: 0o700 });
  return { home, runDir };
}

async function sdkAttempt(socket: string): Promise<unknown> {
  const client = new KeywardClient({
    socketPath: socket,
    clientToken: 'kwc_client-token-that-must-not-leak',
  });
  try {
    await client.getToken('github');
    return undefined;
  } catch (err) {
    return err;
  }
}

describe('a listener in a place another user controls', {
  skip: !isRoot && 'needs root to chown to another uid',
}, () => {
  test('a socket owned by another uid: the CLI and the SDK refuse with FORBIDDEN naming it, and send nothing', async (t) => {
    const { home } = setup(t);
    const rec = await record(home.socket);
    t.after(() => rec.close());
    fs.chownSync(home.socket, NOBODY, NOBODY);

    const cli = await runCli(home, ['status']);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /^keyward: FORBIDDEN: /);
    assert.ok(cli.stderr.includes(home.socket), cli.stderr);
    assert.match(cli.stderr, /uid 65534/);

    const err = await sdkAttempt(home.socket);
    assert.ok(err instanceof KeywardError, String(err));
    assert.equal(err.code, 'FORBIDDEN');
    assert.ok(err.message.includes(home.socket), err.message);

    assert.equal(rec.connections, 0, 'nothing even connected');
    assert.equal(rec.bytes(), '');
  });

  test('a socket directory writable by others (0777): both refuse, naming the directory', async (t) => {
    const { home, runDir } = setup(t);
    const rec = await record(home.socket);
    t.after(() => rec.close());
    fs.chmodSync(runDir, 0o777);
    fs.chmodSync(home.socket, 0o600);

    const cli = await runCli(home, ['token', 'github']);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /^keyward: FORBIDDEN: /);
    assert.ok(cli.stderr.includes(runDir), cli.stderr);
    assert.match(cli.stderr, /0777/);

    const err = await sdkAttempt(home.socket);
    assert.ok(err instanceof KeywardError && err.code === 'FORBIDDEN', String(err));
    assert.ok(err.message.includes(runDir), err.message);

    assert.equal(rec.connections, 0);
    assert.equal(rec.bytes(), '');
  });

  test('a socket directory owned by another uid, and a group-writable socket: both refused', async (t) => {
    const { home, runDir } = setup(t);
    const rec = await record(home.socket);
    t.after(() => rec.close());
    fs.chownSync(runDir, NOBODY, NOBODY);
    assert.equal(((await sdkAttempt(home.socket)) as KeywardError).code, 'FORBIDDEN');
    const cli = await runCli(home, ['status']);
    assert.match(cli.stderr, /^keyward: FORBIDDEN: .*uid 65534/);

    fs.chownSync(runDir, 0, 0);
    fs.chmodSync(home.socket, 0o620);
    const err = (await sdkAttempt(home.socket)) as KeywardError;
    assert.equal(err.code, 'FORBIDDEN');
    assert.ok(err.message.includes(home.socket) && err.message.includes('0620'), err.message);
    assert.equal(rec.connections, 0);
  });

  test("a symbolic link in the socket's place is refused, not followed", async (t) => {
    const { home } = setup(t);
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-elsewhere-'));
    t.after(() => fs.rmSync(elsewhere, { recursive: true, force: true }));
    const rec = await record(path.join(elsewhere, 'trap.sock'));
    t.after(() => rec.close());
    fs.symlinkSync(rec.socket, home.socket);

    const cli = await runCli(home, ['status']);
    assert.match(cli.stderr, /^keyward: FORBIDDEN: .*symbolic link/);
    assert.equal(((await sdkAttempt(home.socket)) as KeywardError).code, 'FORBIDDEN');
    assert.equal(rec.connections, 0);
  });
});

test('control: the same recorder in a private directory does receive the request (the checks above can fail)', async (t) => {
  const { home } = setup(t);
  const rec = await record(home.socket);
  t.after(() => rec.close());
  fs.chmodSync(home.socket, 0o600);
  await sdkAttempt(home.socket);
  assert.equal(rec.connections, 1);
  assert.match(rec.bytes(), /authorization: Bearer kwc_client-token-that-must-not-leak/i);
});

test('the real daemon, in its own 0700 directory, passes the check for the CLI and the SDK', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const daemon = await startDaemon(home);
  t.after(() => daemon.stop());
  const status = await runCli(home, ['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const health = await new KeywardClient({ socketPath: home.socket }).health();
  assert.equal(health.status, 'ok');
});

test('the daemon refuses a pre-existing socket directory that others can write (the macOS TMPDIR fallback case)', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const runDir = path.dirname(home.socket);
  fs.mkdirSync(runDir, { mode: 0o700 });
  fs.chmodSync(runDir, 0o777);
  const daemon = await startDaemon(home, { wait: false });
  const code = await daemon.exited;
  assert.notEqual(code, 0);
  assert.match(daemon.output(), /FORBIDDEN/);
  assert.ok(daemon.output().includes(runDir), daemon.output());
  assert.ok(!fs.existsSync(home.socket), 'no socket was created in it');
});

test('assertTrustedSocket: the rules, with an injected uid', () => {
  const stat = (over: Partial<fs.Stats> & { link?: boolean }) =>
    ({
      uid: 1000,
      mode: 0o700,
      isSymbolicLink: () => over.link === true,
      ...over,
    }) as unknown as fs.Stats;
  const inputs = (dir: fs.Stats, sock: fs.Stats | undefined) => ({
    uid: 1000,
    lstat: (p: string) => {
      if (p === '/r') return dir;
      if (sock === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return sock;
    },
  });
  const ok = stat({});
  assert.doesNotThrow(() => assertTrustedSocket('/r/s.sock', inputs(ok, stat({ mode: 0o600 }))));
  assert.throws(
    () => assertTrustedSocket('/r/s.sock', inputs(ok, undefined)),
    (err: unknown) => err instanceof KeywardError && err.code === 'DAEMON_UNAVAILABLE',
    'no socket yet: unreachable, without connecting',
  );
  // Readable by others is not a way to intercept; writable is.
  assert.doesNotThrow(() =>
    assertTrustedSocket('/r/s.sock', inputs(stat({ mode: 0o755 }), stat({ mode: 0o644 }))),
  );
  for (const [dir, sock] of [
    [stat({ mode: 0o1777 }), stat({ mode: 0o600 })],
    [stat({ mode: 0o720 }), stat({ mode: 0o600 })],
    [stat({ uid: 0 }), stat({ mode: 0o600 })],
    [ok, stat({ uid: 1001, mode: 0o600 })],
    [ok, stat({ mode: 0o602 })],
    [stat({ link: true }), stat({})],
    [ok, stat({ link: true })],
  ] as const) {
    assert.throws(
      () => assertTrustedSocket('/r/s.sock', inputs(dir, sock)),
      (err: unknown) => err instanceof KeywardError && err.code === 'FORBIDDEN' && /\/r/.test(err.message),
    );
  }
  assert.doesNotThrow(() =>
    assertTrustedSocket('\\\\.\\pipe\\keyward-me', inputs(stat({ uid: 0 }), undefined)),
  );
});

test('a missing socket directory or socket is DAEMON_UNAVAILABLE before any connect (another user could create it in between)', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-missing-'));
  fs.chmodSync(base, 0o700);
  try {
    for (const socketPath of [path.join(base, 'absent', 'keyward.sock'), path.join(base, 'keyward.sock')]) {
      assert.throws(
        () => assertTrustedSocket(socketPath),
        (err: unknown) =>
          err instanceof KeywardError &&
          err.code === 'DAEMON_UNAVAILABLE' &&
          err.message.includes(socketPath),
      );
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
