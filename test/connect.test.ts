/**
 * `keyward connect` through the real CLI and daemon: the printed entry has Claude's or VS Code's
 * shape, and started the way an MCP host starts it (only its command, args and env, plus PATH and
 * an empty HOME) it hands the server its token; with `--allow` or a strict policy it carries a new
 * client token that works for the allowed credentials only and stops working once revoked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CLI,
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

const SECRET = `ghp_connect_${crypto.randomBytes(12).toString('hex')}`;
const OTHER_SECRET = `xoxb_connect_${crypto.randomBytes(12).toString('hex')}`;
const sha256 = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

/** The "MCP server": prints the hash of GITHUB_TOKEN and whether it holds a client token. */
const SERVER = `console.log(JSON.stringify({
  sha: require('node:crypto').createHash('sha256').update(process.env.GITHUB_TOKEN ?? '').digest('hex'),
  clientToken: (process.env.KEYWARD_CLIENT_TOKEN ?? '').startsWith('kwc_'),
}));`;

interface Entry {
  command: string;
  args: string[];
  env: Record<string, string>;
  type?: string;
}

/** Starts an entry as an MCP host would: its command, args and env, and nothing of keyward's. */
function launch(
  entry: Entry,
  emptyHome: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(entry.command, entry.args, {
      env: { PATH: process.env.PATH, HOME: emptyHome, ...entry.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('keyward connect', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let emptyHome: string;

  const connect = async (args: string[]) => {
    const res = await runCli(home, ['connect', ...args]);
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout);
  };

  before(async () => {
    home = makeHome();
    emptyHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-host-'));
    daemon = await startDaemon(home);
    for (const [name, secret] of [
      ['gh', SECRET],
      ['slack', OTHER_SECRET],
    ] as const) {
      const add = await runCli(home, ['add', name, '--api-key'], { input: secret });
      assert.equal(add.code, 0, add.stderr);
    }
  });

  after(async () => {
    await daemon?.stop();
    home?.cleanup();
    fs.rmSync(emptyHome, { recursive: true, force: true });
  });

  test('open policy: a Claude entry that runs the server through keyward exec', async () => {
    const doc = await connect(['github', '--env', 'GITHUB_TOKEN=gh', '--', process.execPath, '-e', SERVER]);
    assert.deepEqual(Object.keys(doc), ['mcpServers']);
    const entry: Entry = doc.mcpServers.github;
    assert.equal(entry.command, process.execPath);
    assert.deepEqual(entry.args, [
      CLI,
      'exec',
      '--env',
      'GITHUB_TOKEN=gh',
      '--',
      process.execPath,
      '-e',
      SERVER,
    ]);
    assert.deepEqual(entry.env, { KEYWARD_SOCKET: home.socket });

    const run = await launch(entry, emptyHome);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { sha: sha256(SECRET), clientToken: false });
  });

  test('--allow registers a client; its token works for what it may use, and stops when revoked', async () => {
    const res = await runCli(home, [
      'connect',
      'github-allowed',
      '--allow',
      'gh',
      '--env',
      'GITHUB_TOKEN=gh',
      '--',
      process.execPath,
      '-e',
      SERVER,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const entry: Entry = JSON.parse(res.stdout).mcpServers['github-allowed'];
    assert.match(entry.env.KEYWARD_CLIENT_TOKEN ?? '', /^kwc_/);
    assert.ok(
      !res.stderr.includes(entry.env.KEYWARD_CLIENT_TOKEN as string),
      'the token is data, on stdout only',
    );
    // Issue 12: an entry with a token must not land in a committed project file unannounced.
    assert.match(res.stderr, /holds a client token.*keep it out of git/);

    const list = await runCli(home, ['client', 'list', '--json']);
    const client = JSON.parse(list.stdout).find((c: { name: string }) => c.name === 'github-allowed');
    assert.deepEqual(client.allow, ['gh']);

    const run = await launch(entry, emptyHome);
    assert.equal(run.code, 0, run.stderr);
    // exec read GITHUB_TOKEN with the client token; the server never inherits that token
    // (contract.md "Security (v2)": exec children get tokens, not capabilities).
    assert.deepEqual(JSON.parse(run.stdout), { sha: sha256(SECRET), clientToken: false });

    // The same client token asking for a credential it was not allowed: refused, nothing runs.
    const sneaky = {
      ...entry,
      args: entry.args.map((a) => (a === 'GITHUB_TOKEN=gh' ? 'GITHUB_TOKEN=slack' : a)),
    };
    const refused = await launch(sneaky, emptyHome);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /^keyward: FORBIDDEN: /m);

    // A second connect under the same name would need a second token: refused, the first stands.
    const again = await runCli(home, ['connect', 'github-allowed', '--allow', 'gh', '--', 'true']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ALREADY_EXISTS/);

    const removed = await runCli(home, ['client', 'remove', 'github-allowed']);
    assert.equal(removed.code, 0, removed.stderr);
    const revoked = await launch(entry, emptyHome);
    assert.notEqual(revoked.code, 0);
    assert.equal(revoked.stdout, '');
    assert.match(revoked.stderr, /^keyward: UNAUTHENTICATED: /m);
  });

  test('strict policy: a client token is always issued, for the credentials the entry uses', async () => {
    const set = await runCli(home, ['policy', 'set', 'strict']);
    assert.equal(set.code, 0, set.stderr);
    try {
      const doc = await connect([
        'github-strict',
        '--format',
        'vscode',
        '--env',
        'GITHUB_TOKEN=gh',
        '--',
        process.execPath,
        '-e',
        SERVER,
      ]);
      assert.deepEqual(Object.keys(doc), ['servers']);
      const entry: Entry = doc.servers['github-strict'];
      assert.equal(entry.type, 'stdio');
      assert.match(entry.env.KEYWARD_CLIENT_TOKEN ?? '', /^kwc_/);
      const run = await launch(entry, emptyHome);
      assert.equal(run.code, 0, run.stderr);
      // exec read GITHUB_TOKEN with the client token; the server never inherits that token
      // (contract.md "Security (v2)": exec children get tokens, not capabilities).
      assert.deepEqual(JSON.parse(run.stdout), { sha: sha256(SECRET), clientToken: false });

      // Without a client token a strict daemon serves nothing: the entry is what makes it work.
      const bare = await launch({ ...entry, env: { KEYWARD_SOCKET: home.socket } }, emptyHome);
      assert.equal(bare.code, 1);
      assert.match(bare.stderr, /^keyward: UNAUTHENTICATED: /m);

      // A server that uses the SDK itself gets no exec wrapper, only the token.
      const sdkDoc = await connect(['sdk-server', '--allow', 'slack', '--', 'node', 'server.js']);
      const sdkEntry: Entry = sdkDoc.mcpServers['sdk-server'];
      assert.equal(sdkEntry.command, 'node');
      assert.deepEqual(sdkEntry.args, ['server.js']);
      assert.match(sdkEntry.env.KEYWARD_CLIENT_TOKEN ?? '', /^kwc_/);

      const nothing = await runCli(home, ['connect', 'vague', '--', 'node', 'server.js']);
      assert.equal(nothing.code, 2);
      assert.match(nothing.stderr, /policy is strict.*--allow/);
    } finally {
      await runCli(home, ['policy', 'set', 'open']);
    }
  });

  test('usage errors: a bad server name, a bad binding, no command', async () => {
    const badName = await runCli(home, ['connect', 'Bad Name', '--', 'true']);
    assert.equal(badName.code, 2);
    const badEnv = await runCli(home, ['connect', 'srv', '--env', 'X', '--', 'true']);
    assert.equal(badEnv.code, 2);
    const noCommand = await runCli(home, ['connect', 'srv']);
    assert.equal(noCommand.code, 2);
    const badFormat = await runCli(home, ['connect', 'srv', '--format', 'cursor', '--', 'true']);
    assert.equal(badFormat.code, 2);
  });
});
