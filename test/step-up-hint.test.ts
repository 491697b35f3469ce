/**
 * The step-up hint is a command the user pastes (issue 12 item 9): `keywardFetch` builds it from
 * the scope a server put in its 403 `insufficient_scope` challenge. A hostile server's scope must
 * reach `keyward login` as one argument when the hint runs in a POSIX shell, and run nothing
 * else. The server here is the attacker, so it is hand-made; the daemon and the SDK are real.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { KeywardClient, KeywardError, keywardFetch } from '../client/mcp.js';
import { shellQuote } from '../shared/shell-quote.js';
import { makeHome, runCli, startDaemon } from './helpers/daemon-process.js';

// `${IFS}` is a space to the shell but not to a scope list, so one scope-token can run a command.
const IFS = ['$', '{IFS}'].join('');
const HOSTILE_SCOPES = [
  `api:write';touch${IFS}PWNED;'`,
  `api:write$(touch${IFS}PWNED)`,
  `api:write\`touch${IFS}PWNED\``,
  `api:write'$(touch${IFS}PWNED)'`,
  `api:write|touch${IFS}PWNED&&true;#`,
];

/** Runs `command` in sh with a `keyward` on PATH that prints its argv, NUL-separated. */
function runPasted(command: string): { args: string[]; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-paste-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'keyward'), '#!/bin/sh\nprintf "%s\\0" "$@"\n', { mode: 0o755 });
  const result = spawnSync('sh', ['-c', command], {
    cwd: dir,
    env: { PATH: `${bin}:${process.env.PATH}` },
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  return { args: result.stdout.split('\0').slice(0, -1), dir };
}

test('a hostile scope in a 403 challenge: the pasted hint runs keyward login with it as one argument, and nothing else', async (t) => {
  const home = makeHome();
  t.after(() => home.cleanup());
  const daemon = await startDaemon(home);
  t.after(() => daemon.stop());
  const add = await runCli(home, ['add', 'notes', '--api-key'], { input: 'sk-notes\n' });
  assert.equal(add.code, 0, add.stderr);

  let scope = '';
  const server = http.createServer((_req, res) => {
    res.writeHead(403, {
      'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"`,
    });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  const fetchWithKeyward = keywardFetch('notes', { client: new KeywardClient({ socketPath: home.socket }) });

  for (const hostile of HOSTILE_SCOPES) {
    scope = hostile;
    const err = await fetchWithKeyward(url).then(
      () => assert.fail('a 403 insufficient_scope must throw'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof KeywardError && err.code === 'LOGIN_REQUIRED', String(err));
    const command = /run: (keyward login .*)$/.exec(err.message)?.[1];
    assert.ok(command, err.message);
    const { args, dir } = runPasted(command);
    try {
      assert.deepEqual(
        fs.readdirSync(dir).sort(),
        ['bin'],
        `${hostile}: the pasted command ran something else`,
      );
      assert.deepEqual(args, ['login', 'notes', '--scope', hostile], command);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('shellQuote makes any string one shell word', () => {
  for (const value of ["it's", "''", '', '$HOME', '\\', 'a\nb', '"; rm -rf ~ #', "'$(id)'"]) {
    const { args, dir } = runPasted(`keyward ${shellQuote(value)}`);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(args, [value]);
  }
});
