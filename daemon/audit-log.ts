/**
 * The audit log (contract.md "Access control"): `<KEYWARD_HOME>/audit.log`, one JSON line per token
 * served or denied, per refused connection and per admin change; never a secret. Each line ends
 * with a MAC (HMAC-SHA-512/256, keyed from the vault's data key) over the previous line's MAC and
 * this line, so an edited, removed or reordered line breaks the chain at that line. The files,
 * their format and verification are in audit-chain.ts.
 *
 * It cannot be flushed (contract.md "Security (v2)"): repeated refusals are counted, not written
 * one by one (audit-coalescer.ts), and admin events are also written to `audit.log.admin`, which
 * never rotates. The end of the chain is anchored as it is written: each line is written at once,
 * and `audit.log.head`, a MACed record of the last line, is rewritten at the end of the event-loop
 * turn that wrote lines (one write per batch, off the response's path); admin events rewrite it at
 * once and save the chain's ends in the vault with them. Lines cut from the end, even just before
 * the daemon is killed, are found by `keyward audit --verify`.
 *
 * The chain's ends also live in the vault's clear settings: the anchor (the first retained line's
 * seq and predecessor MAC) and the head, saved every few seconds, at rotation, with each admin
 * event and at shutdown. A same-uid attacker who can rewrite the log, the head record and vault.db
 * (or put back older copies of them) can still truncate: SECURITY.md says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AuditVerifyResponse } from '../shared/protocol.js';
import { ApiError } from './api-error.js';
import {
  AUDIT_CHAIN_SETTING,
  type AuditChain,
  type AuditPeer,
  adminEnd,
  adminFile,
  auditFiles,
  computeMac,
  GENESIS,
  HEAD_RECORD_BYTES,
  headFile,
  headTag,
  lastLine,
  parseChain,
  readHeadRecord,
  readLines,
  verifyAuditLog,
} from './audit-chain.js';
import { type CountedEvent, isCoalescible, RefusalCoalescer } from './audit-coalescer.js';
import { checkPrivateFile, fsyncDir } from './fs-safety.js';
import type { Secret } from './secret.js';

export {
  AUDIT_CHAIN_SETTING,
  type AuditChain,
  type AuditEntry,
  type AuditPeer,
  auditFiles,
  readAuditEntries,
  verifyAuditLog,
} from './audit-chain.js';

/** Where the file rotates, by default: 10 MiB, so the log never holds more than about 20 MiB. */
export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;

/** The line that starts a new chain after the saved one failed to authenticate (tampering). */
const RESET_EVENT = 'audit.reset';

/** Admin changes: kept in `audit.log.admin` when made (refusals of them are not). */
export const ADMIN_EVENTS: ReadonlySet<string> = new Set([
  'client.add',
  'client.remove',
  'credential.add',
  'credential.remove',
  'key.rotate',
  'login',
  'policy.set',
  'vault.unlock',
  // The daemon's own: the saved chain record failed to authenticate, so the log was set aside.
  RESET_EVENT,
]);

/** Entries kept while the vault is locked (no key yet); beyond, they are counted and dropped. */
const MAX_PENDING = 1000;
/** How often a moved head is saved to the vault (the head record has it at once). */
const HEAD_SAVE_INTERVAL_MS = 5_000;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

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

/** Where the chain's ends are kept: the vault's clear settings. */
export interface ChainStore {
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;
}

interface PendingEntry extends CountedEvent {
  ts: string;
}

/** Appends MAC-chained lines to the audit log and rotates it at its size bound. */
export class AuditLog {
  /** The log file path. */
  readonly file: string;
  readonly #store: ChainStore;
  readonly #maxBytes: number;
  readonly #onWarning: (message: string) => void;
  readonly #coalescer: RefusalCoalescer;
  #key: Secret | undefined;
  #fd: number | undefined;
  #adminFd: number | undefined;
  #headFd: number | undefined;
  #size = 0;
  #chain: AuditChain = {
    anchor: { seq: 1, prev: GENESIS },
    head: { seq: 0, mac: GENESIS },
    admin: { lines: 0, mac: GENESIS },
  };
  /** seq and predecessor of the current file's first line: the anchor once the file rotates. */
  #fileStart = { seq: 1, prev: GENESIS };
  /** The head record's write at the end of this event-loop turn, when lines were written in it. */
  #headWrite: NodeJS.Immediate | undefined;
  /** Set when the head record was missing or edited at start-up: verification reports it. */
  #headProblem: string | undefined;
  /** The first line of a chain started anew because the saved one failed to authenticate. */
  #reset: PendingEntry | undefined;
  #pending: PendingEntry[] = [];
  #dropped = 0;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: {
    file: string;
    store: ChainStore;
    maxBytes?: number;
    /** How long repeated refusals are counted before their line is written. */
    coalesceWindowMs?: number;
    onWarning?: (message: string) => void;
  }) {
    this.file = opts.file;
    this.#store = opts.store;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    this.#onWarning = opts.onWarning ?? (() => {});
    this.#coalescer = new RefusalCoalescer({
      onWindowEnd: () => this.#writeCounts(),
      ...(opts.coalesceWindowMs !== undefined ? { windowMs: opts.coalesceWindowMs } : {}),
    });
    // Refuse a symlinked, foreign or loose log at start-up rather than at the first write.
    for (const part of this.#allFiles()) {
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
    this.#fd = this.#openFile(this.file, true);
    this.#size = fs.fstatSync(this.#fd).size;
    this.#headFd = this.#openFile(headFile(this.file), false);
    this.#chain.anchored = true;
    if (this.#reset !== undefined) this.#write(this.#reset);
    this.#reset = undefined;
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
    this.#writeHead();
    this.#saveChain();
  }

  /** Records one event; never throws (a failure to write is reported as a warning). */
  append(event: AuditEvent): void {
    if (this.#closed) return;
    // A refusal anyone can repeat is written once per window, then counted.
    if (isCoalescible(event) && !this.#coalescer.offer(event)) return;
    this.#record({ ts: new Date().toISOString(), event });
  }

  /** Verifies the files against the chain this daemon holds; VAULT_LOCKED before `start`. */
  verify(): AuditVerifyResponse {
    if (this.#key === undefined) {
      throw new ApiError(
        'VAULT_LOCKED',
        'the audit log key comes from the vault, which is locked: run: keyward unlock',
      );
    }
    this.#writeHead();
    const result = verifyAuditLog(this.file, this.#key, this.#chain);
    if (result.intact && this.#headProblem !== undefined) {
      return {
        ...result,
        intact: false,
        failure: { file: headFile(this.file), line: 1, seq: null, reason: this.#headProblem },
      };
    }
    const reset = result.intact ? this.#resetProblem() : undefined;
    return reset === undefined ? result : { ...result, intact: false, failure: reset };
  }

  /** Writes the counted refusals, saves the chain's ends, closes the files and wipes the key. */
  close(): void {
    if (this.#closed) return;
    this.#writeCounts();
    this.#coalescer.stop();
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#key !== undefined) {
      this.#writeHead();
      this.#saveChain();
    }
    for (const fd of [this.#fd, this.#adminFd, this.#headFd]) {
      if (fd === undefined) continue;
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    this.#fd = this.#adminFd = this.#headFd = undefined;
    this.#key?.wipe();
    this.#key = undefined;
  }

  #allFiles(): string[] {
    return [...auditFiles(this.file), adminFile(this.file), headFile(this.file)];
  }

  /** Writes an entry now, or holds it while the key is unknown. */
  #record(entry: PendingEntry): void {
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

  /** Writes the lines that stand for the window's counted refusals. */
  #writeCounts(): void {
    if (this.#closed) return;
    const ts = new Date().toISOString();
    for (const counted of this.#coalescer.drain()) this.#record({ ts, ...counted });
  }

  /** Picks the chain up where the files, the head record and the saved ends say it stopped. */
  #resume(): void {
    let savedJson: string | undefined;
    try {
      savedJson = this.#store.getSetting(AUDIT_CHAIN_SETTING);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'VAULT_CORRUPT')) throw error;
      // The record was edited, rolled back or deleted (the vault knows it existed): the files
      // cannot be checked against it. Set them aside and say so in the new chain's first line,
      // an admin event, so that --verify keeps reporting it instead of starting over silently.
      const suffix = this.#setAside('its saved chain record in the vault failed to authenticate');
      this.#reset = {
        ts: new Date().toISOString(),
        event: { event: RESET_EVENT, target: suffix, outcome: 'error', code: 'VAULT_CORRUPT' },
      };
      return;
    }
    const saved = parseChain(savedJson);
    const [older, current] = auditFiles(this.file) as [string, string];
    const olderTail = lastLine(older);
    const tail = lastLine(current) ?? olderTail;
    if (saved === undefined) {
      const size = (f: string) => fs.lstatSync(f, { throwIfNoEntry: false })?.size ?? 0;
      if (this.#allFiles().some((f) => size(f) > 0)) {
        this.#setAside('it was not written under this vault (it has no chain record)');
      }
      return;
    }
    this.#chain = saved;
    // The head record is written with every batch; the vault's copy may be seconds older.
    const recorded = readHeadRecord(this.file, this.#key as Secret);
    let written = saved.head;
    if (typeof recorded === 'object') {
      if (recorded.seq > written.seq) written = recorded;
    } else if (saved.anchored) {
      this.#headProblem = `the record of the last line written (${headFile(this.file)}) is ${recorded === 'missing' ? 'missing' : 'not one the daemon wrote'}: lines may have been cut from the end`;
      this.#onWarning(`audit log: ${this.#headProblem}; keyward audit --verify reports it`);
    }
    this.#chain.head = { ...written };
    if (tail !== undefined && tail.seq >= written.seq) this.#chain.head = { ...tail };
    else if (written.seq > 0) {
      this.#onWarning(
        `the audit log ${this.file} ends before seq ${written.seq}, the last one written: lines were removed; keyward audit --verify names the place`,
      );
    }
    // An admin line written just before a crash, its vault save lost: the file is ahead.
    const admin = adminEnd(this.file);
    if (admin.lines >= (saved.admin?.lines ?? 0)) this.#chain.admin = admin;
    this.#fileStart = olderTail
      ? { seq: olderTail.seq + 1, prev: olderTail.mac }
      : { seq: this.#chain.anchor.seq, prev: this.#chain.anchor.prev };
  }

  /** Moves a log that cannot be checked aside, says why, and returns the suffix it was kept under. */
  #setAside(why: string): string {
    const suffix = `orphan-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    for (const part of this.#allFiles()) {
      if (fs.lstatSync(part, { throwIfNoEntry: false }) !== undefined)
        fs.renameSync(part, `${part}.${suffix}`);
    }
    fsyncDir(path.dirname(this.file));
    this.#onWarning(
      `the audit log ${this.file} cannot be checked: ${why}; kept as ${this.file}.${suffix}; starting a new log`,
    );
    return suffix;
  }

  /** Finds the line that says an earlier chain was set aside because its record was tampered with. */
  #resetProblem(): AuditVerifyResponse['failure'] | undefined {
    const file = adminFile(this.file);
    const lines = readLines(file);
    for (let i = 0; i < lines.length; i += 1) {
      let entry: { seq?: number; event?: string; ts?: string; target?: string };
      try {
        entry = JSON.parse(lines[i] as string);
      } catch {
        continue;
      }
      if (entry.event !== RESET_EVENT) continue;
      return {
        file,
        line: i + 1,
        seq: entry.seq ?? null,
        reason:
          `at ${entry.ts} the saved audit chain failed to authenticate (edited, rolled back or removed): ` +
          `the log before it, kept as ${this.file}.${entry.target}, may have been tampered with`,
      };
    }
    return undefined;
  }

  #openFile(file: string, append: boolean): number {
    const mode = append ? fs.constants.O_APPEND : 0;
    const flags = fs.constants.O_WRONLY | mode | fs.constants.O_CREAT | O_NOFOLLOW;
    const fd = fs.openSync(file, flags, 0o600);
    if (process.platform !== 'win32') fs.fchmodSync(fd, 0o600);
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
      ...(entry.count !== undefined ? { count: entry.count } : {}),
    });
    const mac = computeMac(key, this.#chain.head.mac, body);
    const line = Buffer.from(`${body.slice(0, -1)},"mac":"${mac}"}\n`, 'utf8');
    if (this.#size > 0 && this.#size + line.length > this.#maxBytes) this.#rotate();
    fs.writeSync(this.#fd as number, line);
    this.#size += line.length;
    this.#chain.head = { seq, mac };
    // The reset line is the daemon's own (no caller), never a refusal to count: always kept.
    if (ADMIN_EVENTS.has(e.event) && (!isCoalescible(e) || e.event === RESET_EVENT)) {
      // Admin events are rare: write them through at once, with the chain's ends in the vault.
      this.#writeHead();
      this.#keepAdmin(body);
      this.#saveChain();
      return;
    }
    // One head record per event-loop turn, however many lines it wrote: one write more per
    // batch on the token path, and the record lags the log by no more than the rest of the turn.
    this.#headWrite ??= setImmediate(() => {
      this.#headWrite = undefined;
      if (this.#closed) return;
      try {
        this.#writeHead();
      } catch (error) {
        this.#onWarning(`could not write the audit head record: ${(error as Error).message}`);
      }
    });
    this.#scheduleSave();
  }

  /** Appends an admin event's body to the admin file, in that file's own chain. */
  #keepAdmin(body: string): void {
    this.#adminFd ??= this.#openFile(adminFile(this.file), true);
    const admin = this.#chain.admin ?? { lines: 0, mac: GENESIS };
    const mac = computeMac(this.#key as Secret, admin.mac, body);
    fs.writeSync(this.#adminFd as number, `${body.slice(0, -1)},"mac":"${mac}"}\n`);
    this.#chain.admin = { lines: admin.lines + 1, mac };
  }

  /** Rewrites the head record (in place, fixed size) to name the last line written. */
  #writeHead(): void {
    if (this.#headWrite !== undefined) {
      clearImmediate(this.#headWrite);
      this.#headWrite = undefined;
    }
    if (this.#headFd === undefined) return;
    const { seq, mac } = this.#chain.head;
    const record = JSON.stringify({ seq, mac, tag: headTag(this.#key as Secret, seq, mac) });
    fs.writeSync(this.#headFd, `${record.padEnd(HEAD_RECORD_BYTES - 1)}\n`, 0, 'utf8');
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
    this.#fd = this.#openFile(this.file, true);
    this.#size = 0;
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
