/**
 * A typed secret. Anything that holds an API key, token, client secret or key material holds a
 * `Secret`, which prints as `[REDACTED]` through every path a logger or serializer takes
 * (`toJSON`, `toString`, template strings, `util.inspect`), so a secret cannot be logged by
 * accident. Reading the value is an explicit `reveal()`.
 */
import crypto from 'node:crypto';
import { inspect } from 'node:util';
import sodium from 'sodium-native';

const REDACTED = '[REDACTED]';

/** Holds one secret value, zeroed by `wipe()`. */
export class Secret {
  readonly #bytes: Buffer;
  #wiped = false;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Wraps a UTF-8 string. */
  static fromString(value: string): Secret {
    return Secret.fromBytes(Buffer.from(value, 'utf8'), true);
  }

  /**
   * Copies bytes into a buffer of its own; with `wipeSource` the source is zeroed after. Key
   * material that lives long (`guarded`) goes into sodium's guarded memory (mlocked, guard pages,
   * zeroed when freed); short-lived values such as tokens being served use an ordinary buffer,
   * zeroed by `wipe()`, because a guarded allocation per request is costly and the served value
   * becomes an unwipeable JS string anyway.
   */
  static fromBytes(source: Uint8Array, wipeSource = false, options: { guarded?: boolean } = {}): Secret {
    // sodium_malloc refuses zero-length allocations; an empty secret never reaches here in
    // practice (inputs are validated), but keep the type total.
    const bytes =
      options.guarded && source.length > 0
        ? sodium.sodium_malloc(source.length)
        : Buffer.alloc(source.length);
    bytes.set(source);
    if (wipeSource && source.length > 0) sodium.sodium_memzero(source as Buffer);
    return new Secret(bytes);
  }

  /** Returns the value as a string. Call only where the value leaves the daemon on purpose. */
  reveal(): string {
    this.#assertLive();
    return this.#bytes.toString('utf8');
  }

  /** Returns the guarded bytes themselves (not a copy): do not keep or mutate them. */
  bytes(): Buffer {
    this.#assertLive();
    return this.#bytes;
  }

  /** The length in bytes. */
  get length(): number {
    return this.#bytes.length;
  }

  /** Compares with another value in constant time (hashing first hides the length, too). */
  equals(other: Secret | string): boolean {
    const a = crypto.createHash('sha256').update(this.bytes()).digest();
    const b = crypto
      .createHash('sha256')
      .update(typeof other === 'string' ? Buffer.from(other, 'utf8') : other.bytes())
      .digest();
    return crypto.timingSafeEqual(a, b);
  }

  /** Zeroes the value; the secret is unusable after. */
  wipe(): void {
    if (!this.#wiped && this.#bytes.length > 0) sodium.sodium_memzero(this.#bytes);
    this.#wiped = true;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }

  #assertLive(): void {
    if (this.#wiped) throw new Error('secret used after wipe');
  }
}
