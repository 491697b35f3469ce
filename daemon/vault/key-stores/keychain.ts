/**
 * The `keychain` key store: the KEK lives in the OS keychain (macOS Keychain, Windows Credential
 * Manager, the Secret Service on Linux) through @napi-rs/keyring, as entry service `keyward`,
 * account = the KEYWARD_HOME path, so two homes never share a key.
 */
import crypto from 'node:crypto';
import type { AsyncEntry, EntryOptions } from '@napi-rs/keyring';
import type { KeywardPaths } from '../../../shared/paths.js';
import { ApiError } from '../../api-error.js';
import { guardedCopy, KEY_BYTES, randomKey, wipe } from '../crypto.js';
import type { CurrentKeyStore, KekCandidate, KeyStore, KeyStoreParams, ProvisionedKek } from './types.js';

/** The keychain service name of every keyward entry. */
export const KEYCHAIN_SERVICE = 'keyward';

// On Linux, keyring's default falls back to the kernel keyring (keyutils), which forgets its keys
// at reboot or after days without use: the vault would be lost. Only the Secret Service persists.
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

const PROBE_TIMEOUT_MS = 5_000;

/** Opens a keychain entry; the native module loads only when a keychain is actually used. */
async function openEntry(account: string): Promise<AsyncEntry> {
  const keyring = await import('@napi-rs/keyring');
  return new keyring.AsyncEntry(KEYCHAIN_SERVICE, account, ENTRY_OPTIONS);
}

/**
 * Tells whether the OS keychain works here: a probe entry must survive a real write, read and
 * delete round trip. A headless Linux without a Secret Service answers false.
 */
export async function isKeychainAvailable(): Promise<boolean> {
  const account = `probe-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  let entry: AsyncEntry | undefined;
  try {
    entry = await openEntry(account);
    const value = crypto.randomBytes(16);
    await entry.setSecret(value, AbortSignal.timeout(PROBE_TIMEOUT_MS));
    const back = await entry.getSecret(AbortSignal.timeout(PROBE_TIMEOUT_MS));
    return back !== null && Buffer.from(back).equals(value);
  } catch {
    return false;
  } finally {
    await entry?.deleteCredential(AbortSignal.timeout(PROBE_TIMEOUT_MS)).catch(() => false);
  }
}

function accountOf(params: KeyStoreParams): string {
  if (typeof params.account !== 'string' || params.account === '') {
    throw new ApiError(
      'VAULT_CORRUPT',
      'the vault key record names no keychain account: restore vault.db from a backup',
    );
  }
  return params.account;
}

function unreachable(account: string, error: unknown): ApiError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ApiError(
    'VAULT_LOCKED',
    `the OS keychain could not be used for the vault key (service ${KEYCHAIN_SERVICE}, account ${account}): ` +
      `${reason}; unlock the keychain (or start the Secret Service), then try again`,
    { cause: error },
  );
}

/** Keeps the KEK in the OS keychain. */
export class KeychainKeyStore implements KeyStore {
  readonly kind = 'keychain' as const;
  readonly #paths: KeywardPaths;

  constructor(paths: KeywardPaths) {
    this.#paths = paths;
  }

  async provision(opts: { current?: CurrentKeyStore }): Promise<ProvisionedKek> {
    const account = await this.#freeAccount(opts.current);
    const entry = await openEntry(account);
    const kek = randomKey();
    try {
      await entry.setSecret(kek);
    } catch (error) {
      wipe(kek);
      throw unreachable(account, error);
    }
    return {
      kek,
      params: { service: KEYCHAIN_SERVICE, account },
      // The new key sits under its own account, so the live one stays intact until discarded.
      commit: async () => {},
      abort: async () => {
        await entry.deleteCredential().catch(() => false);
      },
    };
  }

  /** Picks an account that holds no key yet: the home path, else a suffixed one. */
  async #freeAccount(current: CurrentKeyStore | undefined): Promise<string> {
    const home = this.#paths.home;
    if (current?.kind === 'keychain' && current.params.account === home) return `${home}#${suffix()}`;
    let existing: number[] | null;
    try {
      existing = await (await openEntry(home)).getSecret();
    } catch (error) {
      throw unreachable(home, error);
    }
    if (existing === null) return home;
    // A key left by an earlier vault (maybe a backup elsewhere) is never overwritten.
    existing.fill(0);
    return `${home}#${suffix()}`;
  }

  async load(params: KeyStoreParams): Promise<KekCandidate[]> {
    const account = accountOf(params);
    let secret: number[] | null;
    try {
      secret = await (await openEntry(account)).getSecret();
    } catch (error) {
      throw unreachable(account, error);
    }
    if (secret === null) {
      throw new ApiError(
        'VAULT_CORRUPT',
        `the vault key is missing from the OS keychain (service ${KEYCHAIN_SERVICE}, account ${account}), ` +
          `and the vault cannot be opened without it: restore the keychain entry, or move ${this.#paths.vault} away and run: keyward init`,
      );
    }
    const bytes = Uint8Array.from(secret);
    secret.fill(0);
    if (bytes.length !== KEY_BYTES) {
      wipe(bytes);
      throw new ApiError(
        'VAULT_CORRUPT',
        `the vault key in the OS keychain (account ${account}) is damaged: restore the keychain entry from a backup`,
      );
    }
    return [{ kek: guardedCopy(bytes) }];
  }

  async discard(params: KeyStoreParams): Promise<void> {
    const account = accountOf(params);
    try {
      await (await openEntry(account)).deleteCredential();
    } catch (error) {
      throw unreachable(account, error);
    }
  }

  describe(params: KeyStoreParams): string {
    return `the OS keychain (service ${KEYCHAIN_SERVICE}, account ${String(params.account)})`;
  }
}

function suffix(): string {
  return crypto.randomBytes(4).toString('hex');
}
