/**
 * The key stores, by kind, and the choice `auto` makes: the OS keychain when a real round trip
 * through it works, else the key file.
 */
import type { KeywardPaths } from '../../../shared/paths.js';
import { FileKeyStore } from './file.js';
import { isKeychainAvailable, KeychainKeyStore } from './keychain.js';
import { PassphraseKeyStore } from './passphrase.js';
import type { KeyStore, KeyStoreKind } from './types.js';

export { isKeychainAvailable } from './keychain.js';
export { kdfLimits } from './passphrase.js';
export * from './types.js';

/** Returns the store of a kind for a keyward home. */
export function keyStoreFor(kind: KeyStoreKind, paths: KeywardPaths): KeyStore {
  switch (kind) {
    case 'file':
      return new FileKeyStore(paths);
    case 'keychain':
      return new KeychainKeyStore(paths);
    case 'passphrase':
      return new PassphraseKeyStore();
  }
}

/** Resolves `auto`: the keychain when it really works here, else the file store. */
export async function resolveKeyStoreKind(choice: 'auto' | KeyStoreKind): Promise<KeyStoreKind> {
  if (choice !== 'auto') return choice;
  return (await isKeychainAvailable()) ? 'keychain' : 'file';
}

/**
 * Returns the warning the daemon should log for a store, or null: a key file protects the vault
 * only as well as the file's permissions (and backups) do.
 */
export function keyStoreWarning(kind: KeyStoreKind, paths: KeywardPaths): string | null {
  if (kind !== 'file') return null;
  return (
    `the vault key is in ${paths.keyFile}: the vault is only as safe as that file's permissions and ` +
    'your backups of it; for stronger protection run: keyward rotate-key --key-store passphrase'
  );
}
