/** The Secret type and the logger: a secret cannot reach a log line or a serialisation by accident. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { format, inspect } from 'node:util';
import { createLogger } from '../daemon/log.js';
import { Secret } from '../daemon/secret.js';

const VALUE = 'ghp_S3cr3t-value-that-must-not-print';

test('every way of printing a Secret shows [REDACTED]', () => {
  const s = Secret.fromString(VALUE);
  const renderings = [
    JSON.stringify({ s }),
    String(s),
    `${s}`,
    inspect(s),
    inspect({ nested: { s } }, { depth: 5 }),
    format('%s %o %O %j', s, s, s, { s }),
    `${[s]}`,
  ];
  for (const text of renderings) {
    assert.ok(!text.includes(VALUE), text);
    assert.match(text, /REDACTED/);
  }
  assert.equal(s.reveal(), VALUE);
});

test('equals compares in constant time and by value; wipe makes it unusable', () => {
  const s = Secret.fromString(VALUE);
  assert.ok(s.equals(VALUE));
  assert.ok(s.equals(Secret.fromString(VALUE)));
  assert.ok(!s.equals(`${VALUE}x`));
  assert.ok(!s.equals(''));
  s.wipe();
  assert.throws(() => s.reveal(), /wipe/);
});

test('fromBytes can wipe its source', () => {
  const source = Buffer.from(VALUE);
  const s = Secret.fromBytes(source, true);
  assert.ok(source.every((b) => b === 0));
  assert.equal(s.reveal(), VALUE);
});

test('the logger prints Secrets, secret-named fields and errors without the value', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink as never });
  const err = Object.assign(new Error('refresh failed'), {
    code: 'UPSTREAM_ERROR',
    response: { body: VALUE },
  });
  log.info({ token: Secret.fromString(VALUE) }, 'a Secret field');
  log.info(
    { body: { access_token: VALUE, refresh_token: VALUE, client_secret: VALUE } },
    'secret-named fields',
  );
  log.info({ req: { headers: { authorization: `Bearer ${VALUE}` } } }, 'an authorization header');
  log.error({ err }, 'an error carrying a response body');
  assert.equal(lines.length, 4);
  for (const line of lines) assert.ok(!line.includes(VALUE), line);
  assert.match(lines[3] as string, /"code":"UPSTREAM_ERROR"/);
});
