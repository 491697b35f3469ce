/**
 * What a key store is: a place that keeps (or re-derives) the key-encryption key (KEK) that wraps
 * the vault's data key. The vault row keeps only the store's clear parameters.
 */
import type { Secret } from '../../secret.js';

/** The places a KEK can live (architecture.md "Vault", best first: keychain, passphrase, file). */
export type KeyStoreKind = 'file' | 'keychain' | 'passphrase';

/** Every key store kind, for validation. */
export const KEY_STORE_KINDS: readonly KeyStoreKind[] = ['file', 'keychain', 'passphrase'];

/** A store's clear parameters (KDF salt and limits, keychain account), kept in the vault row. */
export type KeyStoreParams = Record<string, unknown>;

/** A freshly made KEK, not yet live. */
export interface ProvisionedKek {
  /** The KEK, in guarded memory; the vault wipes it after use. */
  kek: Buffer;
  params: KeyStoreParams;
  /** Makes the new KEK the live one; called once the DEK wrapped by it has committed. */
  commit(): Promise<void>;
  /** Throws the new KEK away; called when the commit did not happen. */
  abort(): Promise<void>;
}

/** A KEK to try against the wrapped data key. */
export interface KekCandidate {
  kek: Buffer;
  /** Set when the candidate is a leftover of an interrupted change: makes it the live key. */
  adopt?(): Promise<void>;
}

/** The store that currently holds the vault's KEK, when a new one replaces it. */
export interface CurrentKeyStore {
  kind: KeyStoreKind;
  params: KeyStoreParams;
}

/** One way of keeping a KEK. */
export interface KeyStore {
  readonly kind: KeyStoreKind;
  /** Makes a new KEK and stages it beside (never over) the current one. */
  provision(opts: { passphrase?: Secret; current?: CurrentKeyStore }): Promise<ProvisionedKek>;
  /** Returns the KEKs to try, best first. */
  load(params: KeyStoreParams, passphrase?: Secret): Promise<KekCandidate[]>;
  /** Removes the key material of a KEK that no longer wraps the data key. */
  discard(params: KeyStoreParams): Promise<void>;
  /** Names where the KEK lives, for messages (never the key itself). */
  describe(params: KeyStoreParams): string;
}
