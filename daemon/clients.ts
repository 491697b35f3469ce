/**
 * The client registry (contract.md "Access control"): MCP servers registered with an allow list of
 * credentials and a `kwc_` token. The token is shown once; the vault keeps only its SHA-256, so a
 * copy of vault.db grants nothing. Tokens are 256 random bits, so an unkeyed hash is enough: there
 * is nothing to guess. Each row (name, hash, allow list) carries the vault's row MAC: a client
 * whose row was edited offline is refused with VAULT_CORRUPT, and while a passphrase vault is
 * locked a client is answered VAULT_LOCKED (its row cannot be checked yet, and no token could be
 * served anyway).
 */
import crypto from 'node:crypto';
import { isValidName, NAME_RULE } from '../shared/names.js';
import type { ClientEntry } from '../shared/protocol.js';
import type { ClientDirectory } from './access.js';
import { ApiError } from './api-error.js';
import { Secret } from './secret.js';
import type { ClientRowCheck, Vault } from './vault/vault.js';

/** Prefix that lets secret scanners recognise a client token. */
export const CLIENT_TOKEN_PREFIX = 'kwc_';

/** How stale `last_used_at` may get before it is written back: a write per request would be waste. */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

interface CachedClient {
  name: string;
  hash: Buffer;
  allow: ReadonlySet<string>;
  createdAt: string;
  lastUsedAt: string | null;
  /** What vault.db holds, and when it was last written (ms). */
  persistedLastUsedAt: string | null;
  lastWriteMs: number;
  /** Why its row fails to authenticate ('locked': not checked yet); undefined when it verifies. */
  problem: string | undefined;
}

/** Returns the SHA-256 of a token, the only form the vault keeps. */
export function hashClientToken(token: string | Buffer): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}

function parseAllow(json: string): string[] {
  try {
    const value: unknown = JSON.parse(json);
    if (Array.isArray(value))
      return value.filter((v): v is string => typeof v === 'string' && isValidName(v));
  } catch {
    // A damaged allow list grants nothing.
  }
  return [];
}

function toCached({ row, problem }: ClientRowCheck): CachedClient {
  return {
    problem,
    name: row.name,
    hash: Buffer.from(row.token_hash),
    allow: new Set(parseAllow(row.allow)),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    persistedLastUsedAt: row.last_used_at,
    lastWriteMs: 0,
  };
}

function toEntry(client: CachedClient): ClientEntry {
  return {
    name: client.name,
    allow: [...client.allow].sort(),
    created_at: client.createdAt,
    last_used_at: client.lastUsedAt,
  };
}

/** Registered clients, kept in vault.db and mirrored in memory so each request costs no query. */
export class ClientRegistry implements ClientDirectory {
  readonly #vault: Vault;
  #clients: CachedClient[] = [];
  /** Whether the rows were read before the vault was unlocked, so they wait to be checked. */
  #readLocked = false;
  #closed = false;

  private constructor(vault: Vault) {
    this.#vault = vault;
    this.#load();
  }

  /** Opens the registry on an open vault (close it before the vault). */
  static open(vault: Vault): ClientRegistry {
    return new ClientRegistry(vault);
  }

  /** Reads (and checks, when the vault is unlocked) every client row. */
  #load(): void {
    this.#readLocked = this.#vault.locked;
    this.#clients = this.#vault.readClientRows().map(toCached);
  }

  /**
   * Registers a client allowed to use `allow`; returns its entry and its token, which exists
   * nowhere else afterwards. ALREADY_EXISTS when the name is taken.
   */
  add(name: string, allow: readonly string[]): { entry: ClientEntry; token: Secret } {
    this.#assertOpen();
    if (!isValidName(name)) throw new ApiError('INVALID_REQUEST', `bad client name "${name}": ${NAME_RULE}`);
    for (const credential of allow) {
      if (!isValidName(credential)) {
        throw new ApiError('INVALID_REQUEST', `bad credential name "${credential}" in --allow: ${NAME_RULE}`);
      }
    }
    if (this.#clients.some((c) => c.name === name)) {
      throw new ApiError(
        'ALREADY_EXISTS',
        `a client named "${name}" exists: remove it first (keyward client remove ${name}) or choose another name`,
      );
    }
    const random = crypto.randomBytes(32);
    const token = Secret.fromString(`${CLIENT_TOKEN_PREFIX}${random.toString('base64url')}`);
    random.fill(0);
    const hash = hashClientToken(token.bytes());
    const createdAt = new Date().toISOString();
    const unique = [...new Set(allow)].sort();
    this.#vault.insertClient({
      name,
      token_hash: hash,
      allow: JSON.stringify(unique),
      created_at: createdAt,
    });
    const client: CachedClient = {
      problem: undefined,
      name,
      hash,
      allow: new Set(unique),
      createdAt,
      lastUsedAt: null,
      persistedLastUsedAt: null,
      lastWriteMs: 0,
    };
    this.#clients = [...this.#clients, client].sort((a, b) => a.name.localeCompare(b.name));
    return { entry: toEntry(client), token };
  }

  /** Lists the clients by name, without their tokens (which the registry does not have). */
  list(): ClientEntry[] {
    this.#assertOpen();
    return this.#clients.map(toEntry);
  }

  /** Revokes a client at once: its next request is UNAUTHENTICATED. NOT_FOUND when unknown. */
  remove(name: string): void {
    this.#assertOpen();
    const existed = this.#vault.deleteClient(name);
    const before = this.#clients.length;
    this.#clients = this.#clients.filter((c) => c.name !== name);
    if (!existed && before === this.#clients.length) {
      throw new ApiError('NOT_FOUND', `no client named "${name}": list them with: keyward client list`);
    }
  }

  /**
   * Returns the client a token belongs to, or undefined. Every registered hash is compared, in
   * constant time each and without stopping at a match, so timing says nothing about which
   * client (or whether any) matched. A matching row that fails to authenticate is refused.
   */
  identify(token: string): { name: string; allow: ReadonlySet<string> } | undefined {
    if (this.#closed) return undefined;
    if (this.#readLocked && !this.#vault.locked) this.#load();
    const hash = hashClientToken(token);
    let found: CachedClient | undefined;
    for (const client of this.#clients) {
      if (crypto.timingSafeEqual(client.hash, hash) && found === undefined) found = client;
    }
    if (found === undefined) return undefined;
    if (found.problem === 'locked') {
      throw new ApiError('VAULT_LOCKED', 'the vault is locked: run: keyward unlock');
    }
    if (found.problem !== undefined) {
      throw new ApiError(
        'VAULT_CORRUPT',
        `the stored registration of client "${found.name}" failed to authenticate: ${found.problem}; ` +
          `it is refused, other clients are unaffected: run: keyward client remove ${found.name}, then add it again`,
      );
    }
    this.#touch(found);
    return { name: found.name, allow: found.allow };
  }

  /** Writes pending last-used times and closes the registry's connection. */
  close(): void {
    if (this.#closed) return;
    for (const client of this.#clients) {
      if (client.lastUsedAt !== client.persistedLastUsedAt) this.#writeLastUsed(client, Date.now());
    }
    this.#closed = true;
  }

  #touch(client: CachedClient): void {
    const now = Date.now();
    client.lastUsedAt = new Date(now).toISOString();
    if (now - client.lastWriteMs >= LAST_USED_WRITE_INTERVAL_MS) this.#writeLastUsed(client, now);
  }

  #writeLastUsed(client: CachedClient, now: number): void {
    this.#vault.touchClient(client.name, client.lastUsedAt);
    client.persistedLastUsedAt = client.lastUsedAt;
    client.lastWriteMs = now;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ApiError('INTERNAL', 'the client registry is closed');
  }
}
