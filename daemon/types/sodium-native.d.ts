// The subset of sodium-native 5 that keyward uses. The package ships no types and
// @types/sodium-native describes an older API, so the signatures we rely on are declared here.
declare module 'sodium-native' {
  const sodium: {
    sodium_malloc(size: number): Buffer;
    sodium_memzero(buf: Uint8Array): void;
    sodium_mlock(buf: Uint8Array): void;
    sodium_munlock(buf: Uint8Array): void;
    randombytes_buf(buf: Uint8Array): void;
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES: number;
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
    crypto_aead_xchacha20poly1305_ietf_ABYTES: number;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
      ciphertext: Uint8Array,
      message: Uint8Array,
      additionalData: Uint8Array | null,
      nsec: null,
      nonce: Uint8Array,
      key: Uint8Array,
    ): number;
    crypto_aead_xchacha20poly1305_ietf_decrypt(
      message: Uint8Array,
      nsec: null,
      ciphertext: Uint8Array,
      additionalData: Uint8Array | null,
      nonce: Uint8Array,
      key: Uint8Array,
    ): number;
    crypto_pwhash_SALTBYTES: number;
    crypto_pwhash_OPSLIMIT_MODERATE: number;
    crypto_pwhash_MEMLIMIT_MODERATE: number;
    crypto_pwhash_OPSLIMIT_INTERACTIVE: number;
    crypto_pwhash_MEMLIMIT_INTERACTIVE: number;
    crypto_pwhash_ALG_ARGON2ID13: number;
    crypto_pwhash(
      output: Uint8Array,
      password: Uint8Array,
      salt: Uint8Array,
      opslimit: number,
      memlimit: number,
      algorithm: number,
    ): void;
    crypto_pwhash_async(
      output: Uint8Array,
      password: Uint8Array,
      salt: Uint8Array,
      opslimit: number,
      memlimit: number,
      algorithm: number,
      callback: (error: Error | null) => void,
    ): void;
    // Without a callback it returns a promise (sodium-native 5), still off the event loop.
    crypto_pwhash_async(
      output: Uint8Array,
      password: Uint8Array,
      salt: Uint8Array,
      opslimit: number,
      memlimit: number,
      algorithm: number,
    ): Promise<void>;
    crypto_pwhash_OPSLIMIT_MIN: number;
    crypto_pwhash_OPSLIMIT_MAX: number;
    crypto_pwhash_MEMLIMIT_MIN: number;
    crypto_pwhash_MEMLIMIT_MAX: number;
    crypto_generichash(output: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
    crypto_generichash_BYTES: number;
    crypto_auth_BYTES: number;
    crypto_auth_KEYBYTES: number;
    crypto_auth(output: Uint8Array, input: Uint8Array, key: Uint8Array): void;
    crypto_auth_verify(mac: Uint8Array, input: Uint8Array, key: Uint8Array): boolean;
    crypto_kdf_KEYBYTES: number;
    crypto_kdf_CONTEXTBYTES: number;
    crypto_kdf_derive_from_key(
      subkey: Uint8Array,
      subkeyId: number,
      context: Uint8Array,
      key: Uint8Array,
    ): void;
    sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
  };
  export default sodium;
}
