/**
 * The `passphrase` key store: the KEK is derived from a passphrase with Argon2id
 * (crypto_pwhash, moderate limits) on libuv's thread pool, never on the event loop. Only the
 * salt and the limits are stored, so a vault with this store opens locked until `unlock`.
 */
import sodium from 'sodium-native';
import { ApiError } from '../../api-error.js';
import type { Secret } from '../../secret.js';
import { testOverride } from '../../test-overrides.js';
import { allocKey, wipe } from '../crypto.js';
import type { KekCandidate, KeyStore, KeyStoreParams, ProvisionedKek } from './types.js';

/** Argon2id cost parameters. */
export interface KdfLimits {
  opslimit: number;
  memlimit: number;
}

/** The clear parameters a passphrase vault keeps to re-derive its KEK. */
export interface PassphraseParams extends KdfLimits {
  alg: 'argon2id13';
  salt: string;
}

/**
 * Returns the Argon2id limits for new keys: MODERATE (about 256 MiB, well under a second or so
 * per derivation), or INTERACTIVE when the test-only switch `KEYWARD_TEST_FAST_KDF=1` is set,
 * which counts only with `KEYWARD_TESTING=1` (test-overrides.ts).
 */
export function kdfLimits(env: Record<string, string | undefined> = process.env): KdfLimits {
  if (testOverride('KEYWARD_TEST_FAST_KDF', env) === '1') {
    return {
      opslimit: sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE,
      memlimit: sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE,
    };
  }
  return {
    opslimit: sodium.crypto_pwhash_OPSLIMIT_MODERATE,
    memlimit: sodium.crypto_pwhash_MEMLIMIT_MODERATE,
  };
}

/** Derives a KEK from a passphrase and parameters, off the event loop. */
export async function deriveKek(passphrase: Secret, params: PassphraseParams): Promise<Buffer> {
  const salt = Buffer.from(params.salt, 'base64');
  const kek = allocKey();
  try {
    await sodium.crypto_pwhash_async(
      kek,
      passphrase.bytes(),
      salt,
      params.opslimit,
      params.memlimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13,
    );
  } catch (error) {
    wipe(kek);
    throw error;
  }
  return kek;
}

function requirePassphrase(passphrase: Secret | undefined, action: string): Secret {
  if (passphrase === undefined || passphrase.length === 0) {
    throw new ApiError('INVALID_REQUEST', `a passphrase is required to ${action}; an empty one is refused`);
  }
  return passphrase;
}

/** Reads and validates stored parameters; limits outside libsodium's range mean a damaged row. */
export function parsePassphraseParams(params: KeyStoreParams): PassphraseParams {
  const { alg, salt, opslimit, memlimit } = params;
  const valid =
    alg === 'argon2id13' &&
    typeof salt === 'string' &&
    Buffer.from(salt, 'base64').length === sodium.crypto_pwhash_SALTBYTES &&
    typeof opslimit === 'number' &&
    opslimit >= sodium.crypto_pwhash_OPSLIMIT_MIN &&
    opslimit <= sodium.crypto_pwhash_OPSLIMIT_MAX &&
    typeof memlimit === 'number' &&
    memlimit >= sodium.crypto_pwhash_MEMLIMIT_MIN &&
    // Bound the memory a damaged or hostile row can make us allocate (MODERATE is 256 MiB).
    memlimit <= 4 * sodium.crypto_pwhash_MEMLIMIT_MODERATE;
  if (!valid) {
    throw new ApiError(
      'VAULT_CORRUPT',
      'the vault key record has invalid passphrase parameters: restore vault.db from a backup',
    );
  }
  return { alg, salt, opslimit, memlimit };
}

/** Derives the KEK from a passphrase the user types (`keyward unlock`). */
export class PassphraseKeyStore implements KeyStore {
  readonly kind = 'passphrase' as const;
  readonly #env: Record<string, string | undefined>;

  constructor(env: Record<string, string | undefined> = process.env) {
    this.#env = env;
  }

  async provision(opts: { passphrase?: Secret }): Promise<ProvisionedKek> {
    const passphrase = requirePassphrase(opts.passphrase, 'protect the vault with a passphrase');
    const salt = Buffer.alloc(sodium.crypto_pwhash_SALTBYTES);
    sodium.randombytes_buf(salt);
    const params: PassphraseParams = {
      alg: 'argon2id13',
      salt: salt.toString('base64'),
      ...kdfLimits(this.#env),
    };
    const kek = await deriveKek(passphrase, params);
    return { kek, params: { ...params }, commit: async () => {}, abort: async () => {} };
  }

  async load(params: KeyStoreParams, passphrase?: Secret): Promise<KekCandidate[]> {
    const parsed = parsePassphraseParams(params);
    return [{ kek: await deriveKek(requirePassphrase(passphrase, 'unlock the vault'), parsed) }];
  }

  async discard(): Promise<void> {
    // Nothing is stored outside the vault row, which the rewrap itself replaced.
  }

  describe(): string {
    return 'your passphrase';
  }
}
