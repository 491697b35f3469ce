/**
 * The vault's cryptography: XChaCha20-Poly1305-IETF sealing with associated data that binds each
 * ciphertext to its place, keys in sodium's guarded memory, and subkey derivation from the data key.
 */
import sodium from 'sodium-native';

/** Bytes in a data key, a key-encryption key or a derived subkey. */
export const KEY_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
/** Bytes in an XChaCha20-Poly1305 nonce: 24, so random nonces never realistically collide. */
export const NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
/** Bytes the Poly1305 tag adds to a ciphertext. */
export const TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;

/**
 * The version of the associated-data layout. It is part of every AD, so a future layout cannot
 * be confused with this one.
 */
export const SEAL_VERSION = 'v1';

/** A sealed value as stored: the nonce and the ciphertext with its tag. */
export interface Sealed {
  nonce: Buffer;
  ciphertext: Buffer;
}

/**
 * The associated-data layouts of secret fields: `v1` before the clear columns were authenticated
 * (schema 2), `v2` since. Sealing a vault's rows reseals every secret from v1 to v2, so a secret
 * that already opens only as v2 proves the vault was sealed before (see Vault, "seal").
 */
export type SecretAdLayout = 'v1' | 'v2';

/** Returns the associated data for a secret field of a credential: its exact place in the vault. */
export function secretAd(credentialId: number, field: string, layout: SecretAdLayout = 'v2'): Buffer {
  return Buffer.from(`keyward/${layout}/secret/${credentialId}/${field}`, 'utf8');
}

/**
 * How the wrapped data key is bound. `v1` is how keyward 0.1 wrapped it; `rows-sealed` says, under
 * the key-encryption key, that this vault's clear rows carry MACs (schema 3). A vault whose
 * integrity record and MACs were removed offline therefore cannot pass for one that never had
 * them: only a `v1` wrap lets an open seal unsealed rows.
 */
export type DekAdLayout = 'v1' | 'rows-sealed';

/** Returns the associated data for the wrapped data key. */
export function dekAd(layout: DekAdLayout = 'rows-sealed'): Buffer {
  const suffix = layout === 'v1' ? '' : '/rows-sealed';
  return Buffer.from(`keyward/${SEAL_VERSION}/dek${suffix}`, 'utf8');
}

/** Allocates a guarded key buffer (sodium_malloc: mlocked, guard pages). */
export function allocKey(): Buffer {
  return sodium.sodium_malloc(KEY_BYTES);
}

/** Returns a fresh random key in guarded memory. */
export function randomKey(): Buffer {
  const key = allocKey();
  sodium.randombytes_buf(key);
  return key;
}

/** Copies bytes into a guarded key buffer and wipes the source. */
export function guardedCopy(source: Uint8Array): Buffer {
  const key = sodium.sodium_malloc(source.length);
  key.set(source);
  sodium.sodium_memzero(source);
  return key;
}

/** Zeroes a buffer that held key material or plaintext. */
export function wipe(buffer: Uint8Array | undefined | null): void {
  if (buffer && buffer.length > 0) sodium.sodium_memzero(buffer);
}

/** Seals `plaintext` under `key` with a fresh random nonce, bound to `ad`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Sealed {
  const nonce = Buffer.alloc(NONCE_BYTES);
  sodium.randombytes_buf(nonce);
  const ciphertext = Buffer.alloc(plaintext.length + TAG_BYTES);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(ciphertext, plaintext, ad, null, nonce, key);
  return { nonce, ciphertext };
}

/**
 * Opens a sealed value into a fresh buffer (the caller wipes it), or returns `undefined` when it fails to
 * authenticate (wrong key, wrong place, or any flipped byte).
 */
export function open(key: Uint8Array, sealed: Sealed, ad: Uint8Array): Buffer | undefined {
  if (sealed.nonce.length !== NONCE_BYTES || sealed.ciphertext.length < TAG_BYTES) return undefined;
  const length = sealed.ciphertext.length - TAG_BYTES;
  // A plain buffer, not sodium_malloc: a guarded allocation per read (mmap, guard pages) cost a
  // tenth of a token request, and a served token becomes a JS string anyway. The caller wipes it.
  const plaintext = Buffer.alloc(length);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      plaintext,
      null,
      sealed.ciphertext,
      ad,
      sealed.nonce,
      key,
    );
    return plaintext;
  } catch {
    wipe(plaintext);
    return undefined;
  }
}

const KDF_CONTEXT_LABEL = `keyward/${SEAL_VERSION}/kdf/`;

/**
 * Derives a 32-byte subkey of `key` for `purpose` (crypto_kdf_derive_from_key). The purpose is
 * hashed into the 8-byte context and the subkey id, so any purpose string gets its own key.
 */
export function deriveSubkey(key: Uint8Array, purpose: string): Buffer {
  const digest = Buffer.alloc(sodium.crypto_generichash_BYTES);
  sodium.crypto_generichash(digest, Buffer.from(KDF_CONTEXT_LABEL + purpose, 'utf8'));
  const context = digest.subarray(0, sodium.crypto_kdf_CONTEXTBYTES);
  const subkeyId = digest.readUInt32LE(sodium.crypto_kdf_CONTEXTBYTES);
  const subkey = allocKey();
  sodium.crypto_kdf_derive_from_key(subkey, subkeyId, context, key);
  return subkey;
}
