/**
 * Inert output (contract.md "Security (v2)"): what callers choose reaches `keyward audit`,
 * `audit --json`, `status` and the daemon's log escaped. The attack: a program whose executable
 * path carries terminal escapes (a window-title OSC, a C1 CSI, BEL, CR) and a newline that fakes an
 * audit row asks the real daemon for a token, and another asks for a credential whose name in
 * the URL is a clear-screen sequence; then the user runs `keyward audit`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentialTable } from '../daemon/cli/commands/status.js';
import { inertField, inertText } from '../daemon/inert-text.js';
import type { CredentialStatus } from '../shared/protocol.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

/** Any control character a terminal acts on (newline excepted: it separates lines). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const HOSTILE_DIR = 'bin\u001b]0;pwned\u0007';
const HOSTILE_FILE = 'node\n2026-01-01T00:00:00.000Z credential.remove gh admin\u009b2J\r';
const HOSTILE_NAME = 'x\u001b[2J\u009b31m\r';

/** Runs `exe -e script` and resolves with its stdout. */
function run(exe: string, script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

/** A script that POSTs `{}` to `route` on the daemon's socket and prints the status code. */
function requestScript(socket: string, route: string, headers: Record<string, string> = {}): string {
  const all = JSON.stringify({ 'content-type': 'application/json', ...headers });
  return `require('node:http').request({ socketPath: ${JSON.stringify(socket)}, method: 'POST', path: ${JSON.stringify(route)}, headers: ${all} }, (res) => { res.resume(); res.on('end', () => console.log(res.statusCode)); }).end('{}');`;
}

describe('hostile names reach the terminal inert', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let exe: string;
  let base: string;

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    const add = await runCli(home, ['add', 'gh', '--api-key'], { input: 'sk-inert-output' });
    assert.equal(add.code, 0, add.stderr);
    // A copy of node under a hostile path: /proc/<pid>/exe, and so the audit log, name it.
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-inert-'));
    fs.mkdirSync(path.join(base, HOSTILE_DIR));
    exe = path.join(base, HOSTILE_DIR, HOSTILE_FILE);
    fs.copyFileSync(process.execPath, exe);
    fs.chmodSync(exe, 0o755);
    assert.equal((await run(exe, requestScript(home.socket, '/v1/credentials/gh/token'))).trim(), '200');
    const hostileRoute = `/v1/credentials/${encodeURIComponent(HOSTILE_NAME)}/token`;
    // A refused request is audited with the name as the URL gave it (a revoked token, say).
    const refused = requestScript(home.socket, hostileRoute, { authorization: 'Bearer kwc_revoked' });
    assert.equal((await run(exe, refused)).trim(), '401');
  });
  after(async () => {
    await daemon?.stop();
    home?.cleanup();
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  test('keyward audit prints no raw control character, and the rows are still there', {
    skip: process.platform !== 'linux' && 'the executable path comes from /proc',
  }, async () => {
    const res = await runCli(home, ['audit']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout + res.stderr, RAW_CONTROL);
    assert.ok(res.stdout.includes(inertField(HOSTILE_DIR)), 'the escaped directory is shown');
    assert.ok(res.stdout.includes('\\u001b[2J'), 'the escaped credential name is shown');
    // The newline in the path did not fake a row: exactly the rows written, one line each.
    const rows = res.stdout.split('\n').filter((l) => /\d{4}-\d\d-\d\dT/.test(l));
    assert.equal(rows.length, 3, res.stdout);
  });

  test('keyward audit --json prints no raw control character and reads back the exact path', {
    skip: process.platform !== 'linux' && 'the executable path comes from /proc',
  }, async () => {
    const res = await runCli(home, ['audit', '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, RAW_CONTROL);
    const entries = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(entries.length, 3);
    assert.equal(entries.filter((e) => e.peer?.exe === exe).length, 2);
    assert.equal(entries.filter((e) => e.credential === HOSTILE_NAME).length, 1);
  });

  test("the daemon's log carries no raw control character", () => {
    const lines = daemon.output().split('\n');
    for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL, line);
  });
});

test('status renders hostile fields (an authorization server chose the scope) inert', () => {
  const hostile: CredentialStatus = {
    name: 'acme',
    kind: 'oauth',
    state: 'error',
    grant: 'authorization_code',
    issuer: 'https://as.example/\u001b]0;x\u0007',
    scope: 'openid\u001b[2J\u009b31m\rapi:read\n',
    expires_at: null,
    last_refresh_at: null,
    last_error: { code: 'UPSTREAM_ERROR\u001b[5m', message: 'm\u0007', at: new Date().toISOString() },
  } as CredentialStatus;
  const table = credentialTable([hostile]);
  assert.doesNotMatch(table, RAW_CONTROL);
  assert.ok(table.includes('openid\\u001b[2J\\u009b31m\\u000dapi:read\\u000a'));
  assert.equal(inertText('a\nb\u001b\u009b\u202e'), 'a\nb\\u001b\\u009b\\u202e');
  assert.equal(JSON.parse(`"${inertText('\u009b\u2028')}"`), '\u009b\u2028');
});
