/**
 * Doctor's checks that the integration suite cannot cheaply provoke: a clock that is years off,
 * being stepped, or behind the times keyward recorded; a credential stuck in `error`; client
 * credentials refused; the policy line; a symlinked home.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  clockCheck,
  type DoctorClock,
  DRIFT_TOLERANCE_MS,
  FUTURE_TOLERANCE_MS,
  SAMPLE_MS,
} from '../daemon/doctor/clock-check.js';
import { formatCheck } from '../daemon/doctor/doctor.js';
import { checkPrivatePath } from '../daemon/doctor/file-checks.js';
import { credentialChecks, policyCheck } from '../daemon/doctor/status-checks.js';
import type { CredentialStatus } from '../shared/protocol.js';

/** A clock whose wall time starts at `wallStart` and jumps by `stepMs` while doctor watches it. */
function clockAt(wallStart: number, stepMs = 0): DoctorClock & { slept: number[] } {
  let mono = 1_000;
  let wall = wallStart;
  const slept: number[] = [];
  return {
    slept,
    wallMs: () => wall,
    monotonicMs: () => mono,
    sleep: async (ms) => {
      slept.push(ms);
      mono += ms;
      wall += ms + stepMs;
    },
  };
}

const NOW = Date.parse('2026-03-01T12:00:00Z');

function credential(overrides: Partial<CredentialStatus>): CredentialStatus {
  return {
    name: 'github',
    kind: 'oauth',
    state: 'ready',
    grant: 'authorization_code',
    issuer: 'https://github.com',
    scope: 'repo',
    expires_at: null,
    last_refresh_at: null,
    last_error: null,
    ...overrides,
  };
}

describe('clock check', () => {
  test('a plausible, steady clock passes after watching it for one sample', async () => {
    const clock = clockAt(NOW);
    const result = await clockCheck(clock, []);
    assert.equal(result.status, 'ok');
    assert.deepEqual(clock.slept, [SAMPLE_MS]);
  });

  test('a clock in 1970 fails with how to set it', async () => {
    const result = await clockCheck(clockAt(0), []);
    assert.equal(result.status, 'fail');
    assert.match(result.message, /1970-01-01T00:00:00\.000Z, which cannot be right/);
    assert.match(result.fix ?? '', /timedatectl set-ntp true/);
  });

  test('a wall clock stepped while doctor watches warns', async () => {
    const stepped = await clockCheck(clockAt(NOW, DRIFT_TOLERANCE_MS + 50), []);
    assert.equal(stepped.status, 'warn');
    assert.match(stepped.message, /moved 300 ms against the monotonic clock/);
    // Slewing well inside the tolerance is normal.
    assert.equal((await clockCheck(clockAt(NOW, DRIFT_TOLERANCE_MS - 50), [])).status, 'ok');
  });

  test('a refresh recorded in the future means the clock went back: fail', async () => {
    const later = new Date(NOW + FUTURE_TOLERANCE_MS + 60_000).toISOString();
    const result = await clockCheck(clockAt(NOW), [{ what: 'credential github was refreshed', at: later }]);
    assert.equal(result.status, 'fail');
    assert.match(
      result.message,
      /^credential github was refreshed at .+, 6 min after now .*: the clock went back since$/,
    );
    const near = new Date(NOW + FUTURE_TOLERANCE_MS - 60_000).toISOString();
    assert.equal((await clockCheck(clockAt(NOW), [{ what: 'x', at: near }])).status, 'ok');
  });
});

describe('credential checks', () => {
  test('a credential in error names the last error and what to try; one per broken credential', () => {
    const results = credentialChecks(
      [
        credential({ name: 'ok1' }),
        credential({
          name: 'slack',
          state: 'error',
          issuer: 'https://slack.com',
          last_error: {
            code: 'UPSTREAM_UNAVAILABLE',
            message: 'the token endpoint answered 503',
            at: '2026-03-01T11:59:00Z',
          },
        }),
        credential({ name: 'svc', state: 'needs_login', grant: 'client_credentials' }),
        credential({
          name: 'gh',
          state: 'needs_login',
          last_error: { code: 'LOGIN_REQUIRED', message: 'invalid_grant', at: '2026-03-01T10:00:00Z' },
        }),
      ],
      { live: true },
    );
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      [
        ['credential:slack', 'fail'],
        ['credential:svc', 'fail'],
        ['credential:gh', 'fail'],
      ],
    );
    assert.equal(
      formatCheck(results[0] ?? assert.fail()),
      'FAIL credential slack: its token has expired and refreshing keeps failing: UPSTREAM_UNAVAILABLE: ' +
        'the token endpoint answered 503 (2026-03-01T11:59:00Z); fix: check the network and the authorization ' +
        'server (https://slack.com), then: keyward token slack',
    );
    assert.match(results[1]?.fix ?? '', /client credentials were refused: keyward remove svc/);
    assert.match(results[2]?.message ?? '', /refresh token was rejected \(LOGIN_REQUIRED/);
    assert.equal(results[2]?.fix, 'keyward login gh');
  });

  test('all ready, or none at all, is one ok line', () => {
    assert.deepEqual(
      credentialChecks([credential({}), credential({ name: 'b', kind: 'api_key', grant: null })], {
        live: true,
      }).map(formatCheck),
      ['ok   credentials: 2 credentials, all ready'],
    );
    assert.equal(credentialChecks([], { live: false })[0]?.status, 'ok');
  });
});

describe('policy check', () => {
  test('open warns with how to go strict; strict passes; no policy field, no line', () => {
    const open = policyCheck({ policy: 'open' });
    assert.equal(open?.status, 'warn');
    assert.match(open?.fix ?? '', /keyward client add .*keyward policy set strict/);
    assert.equal(policyCheck({ policy: 'strict' })?.status, 'ok');
    assert.equal(policyCheck({}), undefined);
  });
});

describe('private path check', () => {
  test('a symlinked home fails (another user could redirect it) with the real directory to use', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-checks-'));
    try {
      const real = path.join(base, 'real');
      fs.mkdirSync(real, { mode: 0o700 });
      const link = path.join(base, 'link');
      fs.symlinkSync(real, link);
      const result = checkPrivatePath({
        id: 'home',
        title: 'home',
        path: link,
        kind: 'directory',
        missingFix: 'keyward init',
        uid: process.getuid?.(),
      });
      assert.equal(result.status, 'fail');
      assert.match(result.message, /symbolic link/);
      assert.equal(result.fix, `replace it with the real directory (${fs.realpathSync(real)})`);
      // A regular file where a socket belongs is not a socket.
      const file = path.join(base, 'not-a-socket');
      fs.writeFileSync(file, '', { mode: 0o600 });
      const socket = checkPrivatePath({
        id: 's',
        title: 'socket',
        path: file,
        kind: 'socket',
        missingFix: '',
        uid: process.getuid?.(),
      });
      assert.equal(socket.status, 'fail');
      assert.match(socket.message, /is not a socket/);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
