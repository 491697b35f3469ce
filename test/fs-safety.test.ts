import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  checkPrivateDir,
  checkPrivateFile,
  ensurePrivateDir,
  FsSafetyError,
  writePrivateFile,
} from '../daemon/fs-safety.js';
import { makeTmpHome } from './helpers/tmp-home.js';

const posix = process.platform !== 'win32';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function refusal(fn: () => void, reason: string, file: string): FsSafetyError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FsSafetyError, `expected an FsSafetyError, got ${String(caught)}`);
  assert.equal(caught.reason, reason);
  assert.equal(caught.path, file);
  assert.ok(caught.message.includes(file), `message names the path: ${caught.message}`);
  return caught;
}

test('ensurePrivateDir creates every missing level with mode 0700, even under a lax umask', (t) => {
  const { home } = makeTmpHome(t);
  const deep = path.join(home, 'a', 'b', 'c');
  const old = process.umask(0o000);
  try {
    ensurePrivateDir(deep);
  } finally {
    process.umask(old);
  }
  for (const level of ['a', 'a/b', 'a/b/c']) {
    assert.ok(fs.statSync(path.join(home, level)).isDirectory());
    if (posix) assert.equal(mode(path.join(home, level)), 0o700, level);
  }
  // A second call on the now-existing private directory passes.
  ensurePrivateDir(deep);
});

test('ensurePrivateDir refuses a group/world-accessible directory and says how to fix it', {
  skip: !posix,
}, (t) => {
  const { home } = makeTmpHome(t);
  const dir = path.join(home, 'open');
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o755);
  const error = refusal(() => ensurePrivateDir(dir), 'too-open', dir);
  assert.match(error.message, new RegExp(`chmod 700 ${dir}`));
  assert.match(error.message, /0755/);
  // The check must not "fix" the directory behind the user's back.
  assert.equal(mode(dir), 0o755);
  fs.chmodSync(dir, 0o750);
  refusal(() => checkPrivateDir(dir), 'too-open', dir);
});

test('ensurePrivateDir refuses a symlink even to a private directory, and a plain file', (t) => {
  const { home } = makeTmpHome(t);
  const real = path.join(home, 'real');
  fs.mkdirSync(real, { mode: 0o700 });
  const link = path.join(home, 'link');
  fs.symlinkSync(real, link);
  refusal(() => ensurePrivateDir(link), 'symlink', link);
  const file = path.join(home, 'file');
  fs.writeFileSync(file, 'x', { mode: 0o600 });
  refusal(() => ensurePrivateDir(file), 'not-a-directory', file);
});

test('ensurePrivateDir and checkPrivateFile refuse paths owned by another uid', { skip: !isRoot }, (t) => {
  const { home } = makeTmpHome(t);
  const dir = path.join(home, 'theirs');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, 4242, 4242);
  const error = refusal(() => ensurePrivateDir(dir), 'foreign-owner', dir);
  assert.match(error.message, /uid 4242/);
  const file = path.join(home, 'theirs.key');
  fs.writeFileSync(file, 'x', { mode: 0o600 });
  fs.chownSync(file, 4242, 4242);
  refusal(() => checkPrivateFile(file), 'foreign-owner', file);
});

test('checkPrivateFile accepts 0600 and refuses a group-readable file, a symlink and a missing file', (t) => {
  const { home } = makeTmpHome(t);
  const file = path.join(home, 'vault.key');
  fs.writeFileSync(file, 'k', { mode: 0o600 });
  checkPrivateFile(file);
  if (posix) {
    fs.chmodSync(file, 0o640);
    const error = refusal(() => checkPrivateFile(file), 'too-open', file);
    assert.match(error.message, new RegExp(`chmod 600 ${file}`));
    fs.chmodSync(file, 0o600);
  }
  const link = path.join(home, 'link.key');
  fs.symlinkSync(file, link);
  refusal(() => checkPrivateFile(link), 'symlink', link);
  refusal(() => checkPrivateFile(path.join(home, 'nope')), 'missing', path.join(home, 'nope'));
});

test('writePrivateFile writes mode 0600 under a lax umask and replaces atomically', (t) => {
  const { home } = makeTmpHome(t);
  const file = path.join(home, 'admin.token');
  const old = process.umask(0o000);
  try {
    writePrivateFile(file, 'first');
    if (posix) assert.equal(mode(file), 0o600);
    // An existing looser file is replaced by a new 0600 inode, not rewritten in place.
    fs.chmodSync(file, 0o644);
    writePrivateFile(file, Buffer.from('second'));
  } finally {
    process.umask(old);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'second');
  if (posix) assert.equal(mode(file), 0o600);
  assert.deepEqual(fs.readdirSync(home), ['admin.token'], 'no temp file left behind');
});

test('writePrivateFile exclusive refuses an existing file or symlink and never writes through a link', (t) => {
  const { home } = makeTmpHome(t);
  const file = path.join(home, 'vault.key');
  writePrivateFile(file, 'one', { exclusive: true });
  assert.throws(() => writePrivateFile(file, 'two', { exclusive: true }), { code: 'EEXIST' });
  assert.equal(fs.readFileSync(file, 'utf8'), 'one');

  const victim = path.join(home, 'victim');
  fs.writeFileSync(victim, 'untouched');
  const link = path.join(home, 'link');
  fs.symlinkSync(victim, link);
  assert.throws(() => writePrivateFile(link, 'evil', { exclusive: true }), { code: 'EEXIST' });
  // The atomic path replaces the link itself; the file it pointed at keeps its content.
  writePrivateFile(link, 'mine');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
  assert.ok(!fs.lstatSync(link).isSymbolicLink());
  assert.equal(fs.readFileSync(link, 'utf8'), 'mine');
});
