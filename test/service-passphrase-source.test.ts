/**
 * Where a daemon under a service manager finds its vault passphrase: a systemd credential
 * (`$CREDENTIALS_DIRECTORY/keyward-passphrase`) or `KEYWARD_PASSPHRASE_FILE`, each a private file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { FsSafetyError } from '../daemon/fs-safety.js';
import { StartupError } from '../daemon/listener.js';
import { PASSPHRASE_CREDENTIAL, readServicePassphrase } from '../daemon/service/passphrase-source.js';

function dir(t: TestContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-pass-'));
  fs.chmodSync(d, 0o700);
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function write(file: string, content: string, mode = 0o600): string {
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  return file;
}

describe('readServicePassphrase', () => {
  test('reads the systemd credential, which wins over KEYWARD_PASSPHRASE_FILE; one newline removed', (t) => {
    const creds = dir(t);
    // systemd hands credentials over read-only (0400).
    write(path.join(creds, PASSPHRASE_CREDENTIAL), 'from systemd\n', 0o400);
    const other = write(path.join(dir(t), 'pass'), 'from the file\n');
    const secret = readServicePassphrase({ CREDENTIALS_DIRECTORY: creds, KEYWARD_PASSPHRASE_FILE: other });
    assert.equal(secret?.reveal(), 'from systemd');
  });

  test('falls back to KEYWARD_PASSPHRASE_FILE when the unit passes other credentials only; CRLF removed once', (t) => {
    const creds = dir(t);
    write(path.join(creds, 'something-else'), 'x');
    const file = write(path.join(dir(t), 'pass'), 'two words \r\n\r\n');
    const secret = readServicePassphrase({ CREDENTIALS_DIRECTORY: creds, KEYWARD_PASSPHRASE_FILE: file });
    assert.equal(secret?.reveal(), 'two words \r\n');
    // A Secret never prints its value.
    assert.equal(JSON.stringify({ secret }), '{"secret":"[REDACTED]"}');
  });

  test('nothing configured: undefined, so the vault waits for keyward unlock', () => {
    assert.equal(readServicePassphrase({}), undefined);
    assert.equal(readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: '' }), undefined);
  });

  test('a passphrase file other users can read is refused with the chmod that fixes it', (t) => {
    const file = write(path.join(dir(t), 'pass'), 'secret\n', 0o644);
    assert.throws(
      () => readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: file }),
      (err: unknown) =>
        err instanceof FsSafetyError &&
        err.reason === 'too-open' &&
        err.message.includes(`chmod 600 ${file}`),
    );
  });

  test('a symlink, a missing file, an empty file and a relative path are refused, naming the file', (t) => {
    const d = dir(t);
    const real = write(path.join(d, 'real'), 'secret\n');
    const link = path.join(d, 'link');
    fs.symlinkSync(real, link);
    assert.throws(() => readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: link }), /symbolic link/);
    assert.throws(
      () => readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: path.join(d, 'nope') }),
      (err: unknown) => err instanceof StartupError && /nope, which does not exist/.test(err.message),
    );
    const empty = write(path.join(d, 'empty'), '\n');
    assert.throws(() => readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: empty }), /is empty/);
    assert.throws(
      () => readServicePassphrase({ KEYWARD_PASSPHRASE_FILE: 'pass.txt' }),
      /not an absolute path/,
    );
  });
});
