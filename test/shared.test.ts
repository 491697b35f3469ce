/** Pure units of shared/: the error registry, name rules, path resolution per platform, version. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ERROR_CODES, EXIT, exitCodeFor, isErrorCode, statusForCode } from '../shared/errors.js';
import { isValidName } from '../shared/names.js';
import { type PathInputs, resolvePaths } from '../shared/paths.js';
import { scopeTokens, unionScopes } from '../shared/scope.js';
import { VERSION } from '../shared/version.js';
import { REPO_ROOT } from './helpers/daemon-process.js';

describe('error registry', () => {
  test('every code is documented in README.md with its HTTP status', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      const row = new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`, 'm');
      assert.match(readme, row, `README.md documents ${code} as HTTP ${status}`);
    }
    assert.match(readme, /`DAEMON_UNAVAILABLE`/);
  });

  test('statuses follow the contract', () => {
    assert.equal(statusForCode('INVALID_REQUEST'), 400);
    assert.equal(statusForCode('LOGIN_REQUIRED'), 428);
    assert.equal(statusForCode('VAULT_LOCKED'), 423);
    assert.equal(statusForCode('UPSTREAM_UNAVAILABLE'), 503);
    assert.equal(isErrorCode('NOT_FOUND'), true);
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode('DAEMON_UNAVAILABLE'), false);
  });

  test('CLI exit codes map from error codes', () => {
    assert.equal(exitCodeFor('DAEMON_UNAVAILABLE'), EXIT.DAEMON_UNREACHABLE);
    assert.equal(exitCodeFor('NOT_FOUND'), 4);
    assert.equal(exitCodeFor('LOGIN_REQUIRED'), 5);
    assert.equal(exitCodeFor('INVALID_REQUEST'), 2);
    assert.equal(exitCodeFor('UPSTREAM_ERROR'), 1);
  });
});

describe('names', () => {
  test('accepts the contract pattern and nothing else', () => {
    for (const ok of ['github', 'a', '0', 'my.cred_1-x', 'a'.repeat(64)]) assert.ok(isValidName(ok), ok);
    for (const bad of ['', 'GitHub', '-x', '.x', '_x', '../x', 'a/b', 'a b', 'a'.repeat(65), 'é', 'x\n']) {
      assert.ok(!isValidName(bad), JSON.stringify(bad));
    }
  });
});

describe('path resolution', () => {
  const base = (over: Partial<PathInputs>): PathInputs => ({
    env: {},
    platform: 'linux',
    homedir: '/home/ada',
    uid: 1000,
    username: 'ada',
    tmpdir: '/tmp',
    ...over,
  });

  test('linux: XDG_DATA_HOME and XDG_RUNTIME_DIR when set', () => {
    const p = resolvePaths(base({ env: { XDG_DATA_HOME: '/data', XDG_RUNTIME_DIR: '/run/user/1000' } }));
    assert.equal(p.home, '/data/keyward');
    assert.equal(p.socket, '/run/user/1000/keyward/keyward.sock');
    assert.equal(p.vault, '/data/keyward/vault.db');
    assert.equal(p.adminToken, '/data/keyward/admin.token');
    assert.equal(p.auditLog, '/data/keyward/audit.log');
  });

  test('linux: defaults without XDG variables', () => {
    const p = resolvePaths(base({}));
    assert.equal(p.home, '/home/ada/.local/share/keyward');
    assert.equal(p.socket, '/home/ada/.local/share/keyward/run/keyward.sock');
  });

  test('explicit KEYWARD_HOME and KEYWARD_SOCKET win', () => {
    const p = resolvePaths(
      base({ env: { KEYWARD_HOME: '/k', KEYWARD_SOCKET: '/s.sock', XDG_RUNTIME_DIR: '/run' } }),
    );
    assert.equal(p.home, '/k');
    assert.equal(p.socket, '/s.sock');
  });

  test('macOS: Application Support, and a short socket under TMPDIR when the path is too long', () => {
    const p = resolvePaths(base({ platform: 'darwin', homedir: '/Users/ada' }));
    assert.equal(p.home, '/Users/ada/Library/Application Support/keyward');
    assert.equal(p.socket, '/Users/ada/Library/Application Support/keyward/run/keyward.sock');
    const long = resolvePaths(
      base({ platform: 'darwin', homedir: `/Users/${'x'.repeat(60)}`, uid: 501, tmpdir: '/var/folders/t' }),
    );
    assert.equal(long.socket, '/var/folders/t/keyward-501/keyward.sock');
  });

  test('windows: LOCALAPPDATA and a named pipe', () => {
    const p = resolvePaths(
      base({
        platform: 'win32',
        homedir: 'C:\\Users\\ada',
        env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local' },
      }),
    );
    assert.equal(p.home, 'C:\\Users\\ada\\AppData\\Local\\keyward');
    assert.equal(p.vault, 'C:\\Users\\ada\\AppData\\Local\\keyward\\vault.db');
    assert.equal(p.socket, '\\\\.\\pipe\\keyward-ada');
  });
});

describe('version', () => {
  test('matches package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.equal(VERSION, pkg.version);
  });
});

describe('scopes', () => {
  test('tokens split on spaces; unions keep first-seen order and drop duplicates', () => {
    assert.deepEqual(scopeTokens(' a  b '), ['a', 'b']);
    assert.deepEqual(scopeTokens(null), []);
    assert.equal(unionScopes('openid api:read', 'api:read api:write'), 'openid api:read api:write');
    assert.equal(unionScopes('a', ['b', 'a', '']), 'a b');
    assert.equal(unionScopes(null, undefined, ''), null);
  });
});
