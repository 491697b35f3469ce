// The failure policy as data: every row is one observed failure and the class it must get.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffDelayMs,
  classifyFailure,
  type FailureClass,
  type FailureInput,
  parseRetryAfter,
} from '../daemon/oauth/failure-class.js';

const ROWS: Array<[string, FailureInput, FailureClass]> = [
  // The network and timeouts: try again.
  ['connection refused', { kind: 'network' }, 'transient'],
  ['request timed out', { kind: 'timeout' }, 'transient'],
  ['unparseable answer', { kind: 'malformed' }, 'upstream_error'],
  // RFC 6749 §5.2 and generic HTTP.
  ['400 invalid_grant', { kind: 'http', status: 400, error: 'invalid_grant' }, 'login_required'],
  ['401 invalid_grant', { kind: 'http', status: 401, error: 'invalid_grant' }, 'login_required'],
  ['400 invalid_client', { kind: 'http', status: 400, error: 'invalid_client' }, 'upstream_error'],
  ['401 invalid_client', { kind: 'http', status: 401, error: 'invalid_client' }, 'upstream_error'],
  ['400 unauthorized_client', { kind: 'http', status: 400, error: 'unauthorized_client' }, 'upstream_error'],
  ['400 invalid_scope', { kind: 'http', status: 400, error: 'invalid_scope' }, 'upstream_error'],
  ['400 invalid_request', { kind: 'http', status: 400, error: 'invalid_request' }, 'upstream_error'],
  ['400 unknown code', { kind: 'http', status: 400, error: 'no_idea' }, 'upstream_error'],
  ['400 without a code', { kind: 'http', status: 400 }, 'upstream_error'],
  [
    '400 temporarily_unavailable',
    { kind: 'http', status: 400, error: 'temporarily_unavailable' },
    'transient',
  ],
  ['400 server_error', { kind: 'http', status: 400, error: 'server_error' }, 'transient'],
  ['500', { kind: 'http', status: 500 }, 'transient'],
  ['502', { kind: 'http', status: 502 }, 'transient'],
  [
    '503 temporarily_unavailable',
    { kind: 'http', status: 503, error: 'temporarily_unavailable' },
    'transient',
  ],
  [
    '503 with invalid_grant (status wins)',
    { kind: 'http', status: 503, error: 'invalid_grant' },
    'transient',
  ],
  ['429', { kind: 'http', status: 429 }, 'transient'],
  ['408', { kind: 'http', status: 408 }, 'transient'],
  ['403 from a generic server', { kind: 'http', status: 403 }, 'upstream_error'],
  // GitHub: HTTP 200 with an error code.
  [
    'github 200 bad_refresh_token',
    { kind: 'http', status: 200, error: 'bad_refresh_token', provider: 'github' },
    'login_required',
  ],
  [
    'github 200 bad_verification_code',
    { kind: 'http', status: 200, error: 'bad_verification_code', provider: 'github' },
    'login_required',
  ],
  [
    'github 200 incorrect_client_credentials',
    { kind: 'http', status: 200, error: 'incorrect_client_credentials', provider: 'github' },
    'upstream_error',
  ],
  [
    'bad_refresh_token from a non-GitHub server',
    { kind: 'http', status: 400, error: 'bad_refresh_token' },
    'upstream_error',
  ],
  // Google: plain 400 invalid_grant (no rotation, so an expired testing-app RT ends here).
  [
    'google 400 invalid_grant',
    { kind: 'http', status: 400, error: 'invalid_grant', provider: 'google' },
    'login_required',
  ],
  // Microsoft: invalid_grant (AADSTS codes in the description), interaction_required.
  [
    'microsoft 400 invalid_grant',
    { kind: 'http', status: 400, error: 'invalid_grant', provider: 'microsoft' },
    'login_required',
  ],
  [
    'microsoft 400 interaction_required',
    { kind: 'http', status: 400, error: 'interaction_required', provider: 'microsoft' },
    'login_required',
  ],
  [
    'microsoft 400 consent_required',
    { kind: 'http', status: 400, error: 'consent_required', provider: 'microsoft' },
    'login_required',
  ],
  [
    'interaction_required from another server',
    { kind: 'http', status: 400, error: 'interaction_required' },
    'upstream_error',
  ],
  // Slack: HTTP 200 {"ok":false,"error":...}.
  [
    'slack 200 invalid_refresh_token',
    { kind: 'http', status: 200, error: 'invalid_refresh_token', provider: 'slack' },
    'login_required',
  ],
  [
    'slack 200 token_revoked',
    { kind: 'http', status: 200, error: 'token_revoked', provider: 'slack' },
    'login_required',
  ],
  [
    'slack 200 ratelimited',
    { kind: 'http', status: 200, error: 'ratelimited', provider: 'slack' },
    'transient',
  ],
  [
    'slack 200 invalid_client_id',
    { kind: 'http', status: 200, error: 'invalid_client_id', provider: 'slack' },
    'upstream_error',
  ],
  // Atlassian: 403 invalid_grant, or a bare 403.
  [
    'atlassian 403 invalid_grant',
    { kind: 'http', status: 403, error: 'invalid_grant', provider: 'atlassian' },
    'login_required',
  ],
  ['atlassian bare 403', { kind: 'http', status: 403, provider: 'atlassian' }, 'login_required'],
  ['atlassian 401 without a code', { kind: 'http', status: 401, provider: 'atlassian' }, 'upstream_error'],
  // GitLab and Notion speak RFC 6749.
  [
    'gitlab 400 invalid_grant',
    { kind: 'http', status: 400, error: 'invalid_grant', provider: 'gitlab' },
    'login_required',
  ],
  [
    'notion 400 invalid_grant',
    { kind: 'http', status: 400, error: 'invalid_grant', provider: 'notion' },
    'login_required',
  ],
  ['notion 503', { kind: 'http', status: 503, provider: 'notion' }, 'transient'],
];

for (const [label, input, expected] of ROWS) {
  test(`classifies ${label} as ${expected}`, () => {
    assert.equal(classifyFailure(input), expected);
  });
}

test('Retry-After: delta-seconds, an HTTP-date, and junk', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('7', now), 7000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0); // in the past
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('backoff grows exponentially, is capped, jittered within [50%, 100%], and yields to Retry-After', () => {
  const policy = { baseMs: 100, capMs: 1000 };
  const top = () => 0.999999;
  const bottom = () => 0;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((a) => backoffDelayMs(a, policy, undefined, top)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((a) => backoffDelayMs(a, policy, undefined, bottom)),
    [50, 100, 200, 400, 500],
  );
  assert.equal(backoffDelayMs(0, policy, 5000, top), 5000); // a longer Retry-After wins
  assert.equal(backoffDelayMs(3, policy, 10, top), 800); // a shorter one does not shorten backoff
});
