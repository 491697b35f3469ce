import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  deriveSubkey,
  KEY_BYTES,
  NONCE_BYTES,
  open,
  randomKey,
  seal,
  secretAd,
  TAG_BYTES,
} from '../daemon/vault/crypto.js';

const key = randomKey();

test('seal then open returns the plaintext, under a fresh nonce each time', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 512 }),
      fc.nat(),
      fc.string({ minLength: 1, maxLength: 20 }),
      (bytes, id, field) => {
        const ad = secretAd(id, field);
        const sealed = seal(key, bytes, ad);
        assert.equal(sealed.nonce.length, NONCE_BYTES);
        assert.equal(sealed.ciphertext.length, bytes.length + TAG_BYTES);
        assert.deepEqual(new Uint8Array(open(key, sealed, ad) ?? []), bytes);
        // Same plaintext, same place: a new random nonce, so a different ciphertext.
        assert.ok(!seal(key, bytes, ad).nonce.equals(sealed.nonce));
      },
    ),
    { numRuns: 200 },
  );
});

test('any flipped bit of nonce or ciphertext makes open fail', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 128 }),
      fc.boolean(),
      fc.nat(),
      fc.integer({ min: 0, max: 7 }),
      (bytes, inNonce, position, bit) => {
        const ad = secretAd(1, 'api_key');
        const sealed = seal(key, bytes, ad);
        const target = inNonce ? sealed.nonce : sealed.ciphertext;
        const index = position % target.length;
        target[index] = (target[index] ?? 0) ^ (1 << bit);
        assert.equal(open(key, sealed, ad), undefined);
      },
    ),
    { numRuns: 300 },
  );
});

test('a sealed value opens only at its own credential id and field', () => {
  fc.assert(
    fc.property(
      fc.tuple(fc.nat(), fc.stringMatching(/^[a-z_]{1,16}$/)),
      fc.tuple(fc.nat(), fc.stringMatching(/^[a-z_]{1,16}$/)),
      ([idA, fieldA], [idB, fieldB]) => {
        fc.pre(idA !== idB || fieldA !== fieldB);
        const sealed = seal(key, Buffer.from('refresh-token'), secretAd(idA, fieldA));
        assert.equal(open(key, sealed, secretAd(idB, fieldB)), undefined);
      },
    ),
    { numRuns: 300 },
  );
  // The boundary between id and field is unambiguous: (1, "2x") is not (12, "x").
  const sealed = seal(key, Buffer.from('v'), secretAd(1, '2x'));
  assert.equal(open(key, sealed, secretAd(12, 'x')), undefined);
  assert.equal(open(randomKey(), sealed, secretAd(1, '2x')), undefined, 'another data key never opens it');
});

test('deriveSubkey is stable per purpose, distinct across purposes and keys', () => {
  const a = deriveSubkey(key, 'audit-log-mac');
  assert.equal(a.length, KEY_BYTES);
  assert.ok(a.equals(deriveSubkey(key, 'audit-log-mac')));
  assert.ok(!a.equals(deriveSubkey(key, 'audit-log-mac2')));
  assert.ok(!a.equals(deriveSubkey(randomKey(), 'audit-log-mac')));
  assert.ok(!a.equals(key));
});
