/**
 * One async-mutex `Mutex` per key, created on first use and deleted when its last holder or
 * waiter leaves, so a daemon that has seen thousands of credential names keeps no idle locks.
 */
import { Mutex } from 'async-mutex';

interface Entry {
  mutex: Mutex;
  /** Holders plus waiters: the entry may go only when nobody references it. */
  refs: number;
}

/** Serialises work per key (one credential's refreshes, logins and revocation). */
export class KeyedMutex<K = string> {
  readonly #entries = new Map<K, Entry>();

  /** Runs `fn` while holding `key`'s lock; callers of the same key run one at a time, in order. */
  async runExclusive<T>(key: K, fn: () => T | Promise<T>): Promise<T> {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { mutex: new Mutex(), refs: 0 };
      this.#entries.set(key, entry);
    }
    entry.refs += 1;
    try {
      return await entry.mutex.runExclusive(fn);
    } finally {
      entry.refs -= 1;
      // Checked after the await: a caller that arrived meanwhile holds a ref and keeps the entry.
      if (entry.refs === 0) this.#entries.delete(key);
    }
  }

  /** Tells whether `key` is held right now. */
  isLocked(key: K): boolean {
    return this.#entries.get(key)?.mutex.isLocked() ?? false;
  }

  /** The number of keys with a holder or a waiter. */
  get size(): number {
    return this.#entries.size;
  }
}
