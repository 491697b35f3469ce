/**
 * The `file` key store: the KEK is 32 random bytes in `<KEYWARD_HOME>/vault.key` (mode 0600).
 * It is the headless default and is only as safe as that file's permissions.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { KeywardPaths } from '../../../shared/paths.js';
import { ApiError } from '../../api-error.js';
import { checkPrivateFile, fsyncDir, writePrivateFile } from '../../fs-safety.js';
import { guardedCopy, KEY_BYTES, randomKey, wipe } from '../crypto.js';
import type { CurrentKeyStore, KekCandidate, KeyStore, ProvisionedKek } from './types.js';

/** Keeps the KEK in a private file beside the vault. */
export class FileKeyStore implements KeyStore {
  readonly kind = 'file' as const;
  readonly #paths: KeywardPaths;

  constructor(paths: KeywardPaths) {
    this.#paths = paths;
  }

  /** Where a new key waits until the data key wrapped by it has committed. */
  get #pending(): string {
    return `${this.#paths.keyFile}.new`;
  }

  async provision(opts: { current?: CurrentKeyStore } = {}): Promise<ProvisionedKek> {
    const keyFile = this.#paths.keyFile;
    const pending = this.#pending;
    if (opts.current === undefined && fs.lstatSync(keyFile, { throwIfNoEntry: false })) {
      // A new vault must not overwrite a key that may belong to a vault moved away as a backup.
      throw new ApiError(
        'ALREADY_EXISTS',
        `a key file ${keyFile} exists without a vault (perhaps the key of a vault that was moved away): ` +
          'move it away too, then run: keyward init',
      );
    }
    // A leftover from an interrupted change that the vault did not adopt on open wraps nothing.
    fs.rmSync(pending, { force: true });
    const kek = randomKey();
    writePrivateFile(pending, kek, { exclusive: true });
    return {
      kek,
      params: {},
      // Staging beside the live key and renaming only after the commit means a crash at any
      // point leaves a key file that opens the vault (see load()).
      commit: async () => {
        fs.renameSync(pending, keyFile);
        fsyncDir(path.dirname(keyFile));
      },
      abort: async () => {
        fs.rmSync(pending, { force: true });
      },
    };
  }

  async load(): Promise<KekCandidate[]> {
    const keyFile = this.#paths.keyFile;
    const pending = this.#pending;
    const candidates: KekCandidate[] = [];
    if (fs.lstatSync(keyFile, { throwIfNoEntry: false })) {
      candidates.push({ kek: readKeyFile(keyFile) });
    }
    if (fs.lstatSync(pending, { throwIfNoEntry: false })) {
      candidates.push({
        kek: readKeyFile(pending),
        adopt: async () => {
          fs.renameSync(pending, keyFile);
          fsyncDir(path.dirname(keyFile));
        },
      });
    }
    if (candidates.length === 0) {
      throw new ApiError(
        'VAULT_CORRUPT',
        `the vault key file ${keyFile} is missing, and the vault cannot be opened without it: ` +
          `restore it from a backup, or move ${this.#paths.vault} away and run: keyward init`,
      );
    }
    return candidates;
  }

  async discard(): Promise<void> {
    fs.rmSync(this.#paths.keyFile, { force: true });
    fs.rmSync(this.#pending, { force: true });
    fsyncDir(path.dirname(this.#paths.keyFile));
  }

  describe(): string {
    return `the key file ${this.#paths.keyFile}`;
  }
}

/** Reads a key file after checking it is private; the bytes land in guarded memory. */
function readKeyFile(file: string): Buffer {
  checkPrivateFile(file);
  const raw = fs.readFileSync(file);
  if (raw.length !== KEY_BYTES) {
    wipe(raw);
    throw new ApiError(
      'VAULT_CORRUPT',
      `the vault key file ${file} is damaged (it should hold ${KEY_BYTES} bytes): restore it from a backup`,
    );
  }
  return guardedCopy(raw);
}
