/**
 * Socket activation, as `keyward.socket` does it, with systemd's own `systemd-socket-activate`:
 * it listens on a path and starts `keyward daemon` only when the first client connects, handing
 * the socket over on fd 3 (LISTEN_FDS/LISTEN_PID). The daemon must serve that connection on the
 * inherited socket and open no listener of its own.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, makeHome, socketRequest, type TestHome } from './helpers/daemon-process.js';

const HAS_ACTIVATOR =
  spawnSync('sh', ['-c', 'command -v systemd-socket-activate'], { stdio: 'ignore' }).status === 0;
const SKIP =
  process.platform !== 'linux'
    ? 'socket activation is systemd, so Linux only'
    : HAS_ACTIVATOR
      ? false
      : 'systemd-socket-activate is not installed (Debian package "systemd"; .ci/run installs it)';

/** Socket inodes this process holds open, from /proc/<pid>/fd. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // the fd closed meanwhile
    }
  }
  return inodes;
}

/** Every listening socket on the machine: inode → Unix path or TCP/UDP address. */
function listeners(): Map<string, string> {
  const found = new Map<string, string>();
  // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is __SO_ACCEPTCON.
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 7 && (Number.parseInt(cols[3] ?? '0', 16) & 0x10000) !== 0) {
      found.set(cols[6] ?? '', cols[7] ?? '(unnamed)');
    }
  }
  // /proc/net/tcp{,6}: st 0A is LISTEN; the inode is column 10.
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[9]) found.set(cols[9], `tcp ${cols[1]}`);
    }
  }
  return found;
}

describe('socket activation (systemd-socket-activate)', { skip: SKIP }, () => {
  let home: TestHome;
  let activator: ChildProcess;
  let activated: string;
  let output = '';
  let exited: Promise<number | string>;

  before(async () => {
    home = makeHome();
    // home.socket (<base>/run/keyward.sock, from KEYWARD_SOCKET) is where the daemon would listen
    // by itself; the activator listens elsewhere, so anything at home.socket would be a second listener.
    const dir = path.join(path.dirname(home.home), 'activated');
    fs.mkdirSync(dir, { mode: 0o700 });
    activated = path.join(dir, 'keyward.sock');
    // systemd-socket-activate passes the launched program only PATH, HOME, USER, TERM and the -E
    // variables; HOME is a temp dir too, so a variable lost on the way cannot reach the real home.
    const passed = Object.entries(home.env)
      .filter(([name]) => name.startsWith('KEYWARD_'))
      .flatMap(([name, value]) => ['-E', `${name}=${value}`]);
    activator = spawn(
      'systemd-socket-activate',
      ['-l', activated, ...passed, process.execPath, CLI, 'daemon'],
      { env: { ...home.env, HOME: path.dirname(home.home) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    activator.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    activator.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    exited = new Promise((resolve) =>
      activator.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    const deadline = Date.now() + 5_000;
    while (!fs.existsSync(activated)) {
      if (Date.now() > deadline) throw new Error(`systemd-socket-activate did not listen:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  after(async () => {
    if (activator.exitCode === null && activator.signalCode === null) activator.kill('SIGKILL');
    home?.cleanup();
  });

  test('nothing runs before the first connection; that connection starts the daemon and is served', async () => {
    const pidFile = path.join(home.home, 'daemon.pid');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fs.existsSync(pidFile), false, 'the daemon started before anyone connected');
    assert.equal(fs.existsSync(home.home), false);

    const health = await socketRequest(activated, 'GET', '/v1/health');
    assert.equal(health.status, 200, output);
    assert.equal(health.body.status, 'ok');
    // systemd-socket-activate execs the command in its own process: that process is the daemon.
    assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(activator.pid));
    assert.match(output, /"inherited":true/);
  });

  test('the daemon opened no listener of its own: only the inherited socket listens', () => {
    const pid = activator.pid ?? 0;
    assert.equal(fs.existsSync(home.socket), false, `the daemon created ${home.socket}`);
    assert.equal(fs.existsSync(path.dirname(home.socket)), false);
    const all = listeners();
    const mine = [...socketInodes(pid)].filter((inode) => all.has(inode)).map((inode) => all.get(inode));
    assert.deepEqual(mine, [activated]);
    assert.equal(fs.statSync(activated).isSocket(), true);
  });

  test('further clients are served on the same socket, and SIGTERM exits 0', async () => {
    const results = await Promise.all([1, 2, 3].map(() => socketRequest(activated, 'GET', '/v1/health')));
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200],
    );
    activator.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  });
});
