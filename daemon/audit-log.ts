/**
 * The audit log (contract.md "Access control"): `<KEYWARD_HOME>/audit.log`, one JSON line per token
 * served or denied, per refused connection and per admin change; never a secret. Each line ends
 * with a MAC (HMAC-SHA-512/256, keyed from the vault's data key) over the previous line's MAC and
 * this line, so an edited, removed or reordered line breaks the chain at that line. When the file
 * reaches its size bound it becomes `audit.log.1` (replacing the older one) and the chain goes on
 * in a fresh `audit.log`.
 *
 * The chain's two ends live in the vault's clear settings: the anchor (the first retained line's
 * seq and predecessor MAC) and the head (the last line written). The anchor catches lines removed
 * from the start; the head, kept in memory and saved every few seconds and at shutdown, catches
 * lines cut from the end. A same-uid attacker who can rewrite both the log and vault.db can still
 * truncate: SECURITY.md says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import sodium from 'sodium-native';
import type { AuditVerifyResponse } from '../shared/protocol.js';
import { ApiError } from './api-error.js';
import { checkPrivateFile, fsyncDir } from './fs-safety.js';
import type { Secret } from './secret.js';

/** Where the file rotates, by default: 10 MiB, so the log never holds more than about 20 MiB. */
export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;

/** The clear vault setting that holds the chain's anchor and head. */
export const AUDIT_CHAIN_SETTING = 'audit.chain';

/** The MAC before the first line ever written. */
const GENESIS = '0'.repeat(64);
/** Entries kept while the vault is locked (no key yet); beyond, they are counted and dropped. */
const MAX_PENDING = 1000;
/** How often a moved head is saved to the vault. */
const HEAD_SAVE_INTERVAL_MS = 5_000;
/** How much of a file's end is read to find its last line; lines are far shorter. */
const TAIL_BYTES = 64 * 1024;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const LINE_PATTERN = /^(\{.*),"mac":"([0-9a-f]{64})"\}$/;

/** Who was on the other end of the socket, where the platform says. */
export interface AuditPeer {
  pid: number | null;
  uid: number | null;
  exe: string | null;
}

/** What happened, as a caller reports it; the log adds `seq`, `ts` and `mac`. */
export interface AuditEvent {
  /** `token`, `invalidate`, `connection.refused`, `client.add`, `policy.set`, ... */
  event: string;
  credential?: string | null;
  /** The client whose token made the request. */
  client?: string | null;
  /** What kind of caller made the request: the CLI (admin token), a client, or no token. */
  caller?: 'admin' | 'client' | 'anonymous' | null;
  /** What an admin change acted on: a client name, a policy, a key store. */
  target?: string | null;
  peer?: AuditPeer | null;
  outcome: 'ok' | 'denied' | 'error';
  /** The error code when the outcome is not ok. */
  code?: string | null;
  /** For tokens: whether a refresh happened while serving this request. */
  refreshed?: boolean | null;
}

/** One written line, parsed. */
export interface AuditEntry {
  seq: number;
  ts: string;
  event: string;
  credential: string | null;
  client: string | null;
  caller: string | null;
  target: string | null;
  peer: AuditPeer | null;
  outcome: string;
  code: string | null;
  refreshed: boolean | null;
  mac: string;
}

/** The chain's ends, as kept in the vault. */
export interface AuditChain {
  /** The first retained line: its seq and the MAC before it. */
  anchor: { seq: number; prev: string };
  /** The last line written: its seq and MAC (seq 0 and the genesis MAC before any line). */
  head: { seq: number; mac: string };
}

/** Where the chain's ends are kept: the vault's clear settings. */
export interface ChainStore {
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;
}

interface PendingEntry {
  ts: string;
  event: AuditEvent;
}

/** Returns the log's files, oldest first. */
export function auditFiles(file: string): string[] {
  return [`${file}.1`, file];
}

function computeMac(key: Secret, prev: string, body: string): string {
  const out = Buffer.alloc(sodium.crypto_auth_BYTES);
  sodium.crypto_auth(out, Buffer.from(`${prev}\n${body}`, 'utf8'), key.bytes());
  return out.toString('hex');
}

function macMatches(key: Secret, prev: string, body: string, mac: string): boolean {
  return sodium.crypto_auth_verify(
    Buffer.from(mac, 'hex'),
    Buffer.from(`${prev}\n${body}`, 'utf8'),
    key.bytes(),
  );
}

/** Splits a raw line into the MACed body and its MAC, or returns undefined when it has none. */
function splitLine(raw: string): { body: string; mac: string } | undefined {
  const match = LINE_PATTERN.exec(raw);
  if (!match?.[1] || !match[2]) return undefined;
  return { body: `${match[1]}}`, mac: match[2] };
}

function parseSeq(body: string): number | null {
  try {
    const seq = (JSON.parse(body) as { seq?: unknown }).seq;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : null;
  } catch {
    return null;
  }
}

/** Reads a log file's lines (an absent file has none); refuses a symlinked or foreign one. */
function readLines(file: string): string[] {
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return [];
  checkPrivateFile(file);
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Parses the entries of the log's files, oldest first, for `keyward audit`. */
export function readAuditEntries(file: string): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (const part of auditFiles(file)) {
    for (const line of readLines(part)) {
      try {
        entries.push(JSON.parse(line) as AuditEntry);
      } catch {
        // A damaged line is shown by --verify; the listing skips it.
      }
    }
  }
  return entries;
}

function lastLine(file: string): { seq: number; mac: string } | undefined {
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').filter(Boolean);
    const split = splitLine(lines.at(-1) ?? '');
    if (!split) return undefined;
    const seq = parseSeq(split.body);
    return seq === null ? undefined : { seq, mac: split.mac };
  } finally {
    fs.closeSync(fd);
  }
}

function parseChain(json: string | undefined): AuditChain | undefined {
  if (json === undefined) return undefined;
  try {
    const value = JSON.parse(json) as AuditChain;
    const hex = /^[0-9a-f]{64}$/;
    if (
      Number.isSafeInteger(value.anchor.seq) &&
      hex.test(value.anchor.prev) &&
      Number.isSafeInteger(value.head.seq) &&
      hex.test(value.head.mac)
    ) {
      return { anchor: { ...value.anchor }, head: { ...value.head } };
    }
  } catch {
    // Fall through: a damaged record is treated as none.
  }
  return undefined;
}

function describeOutOfOrder(seqs: Array<number | null>, index: number, expected: number): string {
  const seq = seqs[index] as number;
  if (seq > expected) {
    const later = seqs.indexOf(expected, index + 1);
    return later === -1
      ? `it has seq ${seq} where ${expected} was expected: ${seq - expected === 1 ? 'a line was' : `${seq - expected} lines were`} removed before it`
      : `it has seq ${seq} where ${expected} was expected: lines were reordered (seq ${expected} comes later)`;
  }
  return `it has seq ${seq} where ${expected} was expected: lines were reordered or duplicated`;
}

/**
 * Verifies the chain across `audit.log.1` and `audit.log` with the log's key. `chain` gives the
 * anchor and head to hold the ends to; without it only the lines' own chain is checked.
 */
export function verifyAuditLog(file: string, key: Secret, chain?: AuditChain): AuditVerifyResponse {
  const files = auditFiles(file);
  const present = files.filter((f) => fs.lstatSync(f, { throwIfNoEntry: false }) !== undefined);
  const lines: Array<{ file: string; line: number; raw: string }> = [];
  for (const part of files) {
    readLines(part).forEach((raw, i) => {
      lines.push({ file: part, line: i + 1, raw });
    });
  }
  const fail = (index: number, seq: number | null, reason: string): AuditVerifyResponse => {
    const at = lines[index] ?? lines.at(-1);
    return {
      intact: false,
      lines: lines.length,
      files: present,
      failure: { file: at?.file ?? file, line: at?.line ?? 0, seq, reason },
    };
  };

  const split = lines.map((l) => splitLine(l.raw));
  const seqs = split.map((s) => (s ? parseSeq(s.body) : null));
  let prev: string | undefined;
  let expected: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const parts = split[i];
    const seq = seqs[i] ?? null;
    if (!parts || seq === null)
      return fail(i, null, 'it is not a keyward audit line (no MAC or no seq): edited');
    if (i === 0) {
      // The first retained line must be the anchor, or (after a crash mid-rotation) older.
      const anchor = chain?.anchor ?? { seq: 1, prev: GENESIS };
      if (seq > anchor.seq) {
        return fail(
          i,
          seq,
          `it has seq ${seq} but the log starts at seq ${anchor.seq}: lines were removed before it`,
        );
      }
      if (seq === anchor.seq) prev = anchor.prev;
      expected = seq;
    }
    if (seq !== expected) return fail(i, seq, describeOutOfOrder(seqs, i, expected as number));
    if (prev !== undefined && !macMatches(key, prev, parts.body, parts.mac)) {
      return fail(i, seq, 'its MAC does not match: the line was edited');
    }
    prev = parts.mac;
    expected = seq + 1;
  }
  const head = chain?.head;
  const lastSeq = expected === undefined ? 0 : expected - 1;
  if (head !== undefined && head.seq > lastSeq) {
    return fail(
      lines.length - 1,
      lastSeq === 0 ? null : lastSeq,
      `the log ends at seq ${lastSeq} but seq ${head.seq} was written: the last lines were removed`,
    );
  }
  if (head !== undefined && head.seq === lastSeq && lastSeq > 0 && prev !== head.mac) {
    return fail(lines.length - 1, lastSeq, 'it is not the last line the daemon wrote: the end was replaced');
  }
  return { intact: true, lines: lines.length, files: present };
}

/** Appends MAC-chained lines to the audit log and rotates it at its size bound. */
export class AuditLog {
  /** The log file path. */
  readonly file: string;
  readonly #store: ChainStore;
  readonly #maxBytes: number;
  readonly #onWarning: (message: string) => void;
  #key: Secret | undefined;
  #fd: number | undefined;
  #size = 0;
  #chain: AuditChain = { anchor: { seq: 1, prev: GENESIS }, head: { seq: 0, mac: GENESIS } };
  /** seq and predecessor of the current file's first line: the anchor once the file rotates. */
  #fileStart = { seq: 1, prev: GENESIS };
  #pending: PendingEntry[] = [];
  #dropped = 0;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: {
    file: string;
    store: ChainStore;
    maxBytes?: number;
    onWarning?: (message: string) => void;
  }) {
    this.file = opts.file;
    this.#store = opts.store;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.#onWarning = opts.onWarning ?? (() => {});
    // Refuse a symlinked, foreign or loose log at start-up rather than at the first write.
    for (const part of auditFiles(this.file)) {
      if (fs.lstatSync(part, { throwIfNoEntry: false }) !== undefined) checkPrivateFile(part);
    }
  }

  /** Tells whether lines are being written (the key is known), rather than held back. */
  get open(): boolean {
    return this.#key !== undefined;
  }

  /**
   * Starts writing with the log's key (derived from the vault's data key, so a passphrase vault
   * provides it once unlocked); the log takes ownership of `key` and wipes it on close. Entries
   * recorded before are written now, in order.
   */
  start(key: Secret): void {
    if (this.#closed || this.#key !== undefined) {
      key.wipe();
      return;
    }
    this.#key = key;
    this.#resume();
    this.#fd = this.#openFile();
    const pending = this.#pending;
    this.#pending = [];
    for (const entry of pending) this.#write(entry);
    if (this.#dropped > 0) {
      this.#write({
        ts: new Date().toISOString(),
        event: {
          event: 'audit.dropped',
          target: String(this.#dropped),
          outcome: 'error',
          code: 'VAULT_LOCKED',
        },
      });
      this.#dropped = 0;
    }
    this.#saveChain();
  }

  /** Records one event; never throws (a failure to write is reported as a warning). */
  append(event: AuditEvent): void {
    if (this.#closed) return;
    const entry = { ts: new Date().toISOString(), event };
    if (this.#key === undefined) {
      if (this.#pending.length < MAX_PENDING) this.#pending.push(entry);
      else this.#dropped++;
      return;
    }
    try {
      this.#write(entry);
    } catch (error) {
      this.#onWarning(`could not write to the audit log ${this.file}: ${(error as Error).message}`);
    }
  }

  /** Verifies the files against the chain this daemon holds; VAULT_LOCKED before `start`. */
  verify(): AuditVerifyResponse {
    if (this.#key === undefined) {
      throw new ApiError(
        'VAULT_LOCKED',
        'the audit log key comes from the vault, which is locked: run: keyward unlock',
      );
    }
    return verifyAuditLog(this.file, this.#key, this.#chain);
  }

  /** Saves the chain's ends, closes the file and wipes the key. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#key !== undefined) this.#saveChain();
    if (this.#fd !== undefined) {
      fs.fsyncSync(this.#fd);
      fs.closeSync(this.#fd);
      this.#fd = undefined;
    }
    this.#key?.wipe();
    this.#key = undefined;
  }

  /** Picks the chain up where the files and the saved ends say it stopped. */
  #resume(): void {
    const saved = parseChain(this.#store.getSetting(AUDIT_CHAIN_SETTING));
    const [older, current] = auditFiles(this.file) as [string, string];
    const olderTail = lastLine(older);
    const tail = lastLine(current) ?? olderTail;
    if (saved === undefined) {
      const size = (f: string) => fs.lstatSync(f, { throwIfNoEntry: false })?.size ?? 0;
      if (size(current) > 0 || size(older) > 0) this.#setAside();
      return;
    }
    this.#chain = saved;
    if (tail !== undefined && tail.seq >= saved.head.seq) this.#chain.head = { ...tail };
    else if (saved.head.seq > 0) {
      this.#onWarning(
        `the audit log ${this.file} ends before seq ${saved.head.seq}, the last one written: lines were removed; keyward audit --verify names the place`,
      );
    }
    this.#fileStart = olderTail
      ? { seq: olderTail.seq + 1, prev: olderTail.mac }
      : { seq: this.#chain.anchor.seq, prev: this.#chain.anchor.prev };
  }

  /** Moves a log written under another key (an earlier vault) aside and starts a new chain. */
  #setAside(): void {
    const suffix = `orphan-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    for (const part of auditFiles(this.file)) {
      if (fs.lstatSync(part, { throwIfNoEntry: false }) !== undefined)
        fs.renameSync(part, `${part}.${suffix}`);
    }
    fsyncDir(path.dirname(this.file));
    this.#onWarning(
      `the audit log ${this.file} was not written under this vault (it has no chain record): kept as ${this.file}.${suffix}; starting a new log`,
    );
  }

  #openFile(): number {
    const flags = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | O_NOFOLLOW;
    const fd = fs.openSync(this.file, flags, 0o600);
    if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
    this.#size = fs.fstatSync(fd).size;
    return fd;
  }

  #write(entry: PendingEntry): void {
    const key = this.#key as Secret;
    const e = entry.event;
    const seq = this.#chain.head.seq + 1;
    const body = JSON.stringify({
      seq,
      ts: entry.ts,
      event: e.event,
      credential: e.credential ?? null,
      client: e.client ?? null,
      caller: e.caller ?? null,
      target: e.target ?? null,
      peer: e.peer ? { pid: e.peer.pid, uid: e.peer.uid, exe: e.peer.exe } : null,
      outcome: e.outcome,
      code: e.code ?? null,
      refreshed: e.refreshed ?? null,
    });
    const mac = computeMac(key, this.#chain.head.mac, body);
    const line = Buffer.from(`${body.slice(0, -1)},"mac":"${mac}"}\n`, 'utf8');
    if (this.#size > 0 && this.#size + line.length > this.#maxBytes) this.#rotate();
    fs.writeSync(this.#fd as number, line);
    this.#size += line.length;
    this.#chain.head = { seq, mac };
    this.#scheduleSave();
  }

  /** audit.log → audit.log.1 (dropping the older one); the chain continues in a new audit.log. */
  #rotate(): void {
    const fd = this.#fd as number;
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.#fd = undefined;
    // Save the new anchor before the rename: after a crash between the two, the verifier accepts
    // a first line older than the anchor, never a newer one.
    this.#chain.anchor = { ...this.#fileStart };
    this.#saveChain();
    fs.renameSync(this.file, `${this.file}.1`);
    fsyncDir(path.dirname(this.file));
    this.#fileStart = { seq: this.#chain.head.seq + 1, prev: this.#chain.head.mac };
    this.#fd = this.#openFile();
  }

  #scheduleSave(): void {
    this.#dirty = true;
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#dirty && !this.#closed) this.#saveChain();
    }, HEAD_SAVE_INTERVAL_MS);
    this.#timer.unref();
  }

  #saveChain(): void {
    try {
      this.#store.setSetting(AUDIT_CHAIN_SETTING, JSON.stringify(this.#chain));
      this.#dirty = false;
    } catch (error) {
      this.#onWarning(`could not save the audit chain's state: ${(error as Error).message}`);
    }
  }
}
