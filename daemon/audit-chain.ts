/**
 * The audit log's files and their MAC chain: the line format, reading, and verification. The
 * writer is `AuditLog` (audit-log.ts). Files, next to each other in KEYWARD_HOME:
 *
 * - `audit.log` and `audit.log.1`: every line, MAC-chained across both; at its size bound
 *   `audit.log` becomes `audit.log.1` and the older one is dropped.
 * - `audit.log.admin`: a copy of every admin event (a credential, client, policy or key change,
 *   a login, an unlock), in a chain of its own, never rotated. Admin events are rare and made with
 *   the admin token, so this file stays small, and nothing a caller without that token does can
 *   push them out of the log (contract.md "Security (v2)").
 * - `audit.log.head`: the last line written (seq and MAC) under a MAC of its own, rewritten with
 *   each batch of lines. Lines cut from the end and a daemon killed before it saved its state
 *   are caught by it; the vault's copy of the chain's ends is saved only every few seconds.
 */
import fs from 'node:fs';
import sodium from 'sodium-native';
import type { AuditVerifyResponse } from '../shared/protocol.js';
import { checkPrivateFile } from './fs-safety.js';
import type { Secret } from './secret.js';

/** The clear vault setting that holds the chain's anchor and head. */
export const AUDIT_CHAIN_SETTING = 'audit.chain';
/** The MAC before the first line ever written (of the log and of the admin file). */
export const GENESIS = '0'.repeat(64);
/** The head record's fixed size: rewritten in place, it never needs truncating. */
export const HEAD_RECORD_BYTES = 200;

/** How much of a file's end is read to find its last line; lines are far shorter. */
const TAIL_BYTES = 64 * 1024;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const LINE_PATTERN = /^(\{.*),"mac":"([0-9a-f]{64})"\}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Who was on the other end of the socket, where the platform says. */
export interface AuditPeer {
  pid: number | null;
  uid: number | null;
  exe: string | null;
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
  /** On a coalesced line: how many requests it stands for (absent: one). */
  count?: number;
  mac: string;
}

/** The chain's ends, as kept in the vault. */
export interface AuditChain {
  /** The first retained line: its seq and the MAC before it. */
  anchor: { seq: number; prev: string };
  /** The last line written: its seq and MAC (seq 0 and the genesis MAC before any line). */
  head: { seq: number; mac: string };
  /** The admin file's end: how many lines it holds and the last one's MAC. */
  admin?: { lines: number; mac: string };
  /** Set once `audit.log.head` is kept: from then on its absence is a finding, not an upgrade. */
  anchored?: boolean;
}

/** Returns the log's rotating files, oldest first. */
export function auditFiles(file: string): string[] {
  return [`${file}.1`, file];
}

/** Returns the file that keeps admin events past rotation. */
export function adminFile(file: string): string {
  return `${file}.admin`;
}

/** Returns the file that records the last line written. */
export function headFile(file: string): string {
  return `${file}.head`;
}

/** Computes a line's MAC over the previous MAC and its body. */
export function computeMac(key: Secret, prev: string, body: string): string {
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

/** Computes the head record's tag: a MAC in a domain of its own, so no line can pass for it. */
export function headTag(key: Secret, seq: number, mac: string): string {
  return computeMac(key, 'keyward audit head', `${seq}\n${mac}`);
}

/** Reads the head record: its line, `invalid` when it does not verify, `missing` when absent. */
export function readHeadRecord(
  file: string,
  key: Secret,
): { seq: number; mac: string } | 'invalid' | 'missing' {
  const head = headFile(file);
  if (fs.lstatSync(head, { throwIfNoEntry: false }) === undefined) return 'missing';
  checkPrivateFile(head);
  try {
    const value = JSON.parse(fs.readFileSync(head, 'utf8')) as {
      seq?: unknown;
      mac?: unknown;
      tag?: unknown;
    };
    const { seq, mac, tag } = value;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return 'invalid';
    if (typeof mac !== 'string' || !HEX64.test(mac) || typeof tag !== 'string' || !HEX64.test(tag)) {
      return 'invalid';
    }
    return macMatches(key, 'keyward audit head', `${seq}\n${mac}`, tag) ? { seq, mac } : 'invalid';
  } catch {
    return 'invalid';
  }
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
export function readLines(file: string): string[] {
  if (fs.lstatSync(file, { throwIfNoEntry: false }) === undefined) return [];
  checkPrivateFile(file);
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function parseEntries(lines: string[]): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (const line of lines) {
    try {
      entries.push(JSON.parse(line) as AuditEntry);
    } catch {
      // A damaged line is shown by --verify; the listing skips it.
    }
  }
  return entries;
}

/**
 * Parses the log for `keyward audit`, oldest first: the admin events that rotation took out of
 * the log (from the admin file), then the lines of `audit.log.1` and `audit.log`.
 */
export function readAuditEntries(file: string): AuditEntry[] {
  const entries = parseEntries(auditFiles(file).flatMap((part) => readLines(part)));
  const first = entries[0]?.seq ?? Number.POSITIVE_INFINITY;
  const kept = parseEntries(readLines(adminFile(file))).filter((e) => e.seq < first);
  return [...kept, ...entries];
}

/** Returns the seq and MAC of a file's last line, if it has one. */
export function lastLine(file: string): { seq: number; mac: string } | undefined {
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

/** Returns how many lines the admin file holds and its last MAC (genesis when it has none). */
export function adminEnd(file: string): { lines: number; mac: string } {
  const lines = readLines(adminFile(file));
  const last = splitLine(lines.at(-1) ?? '');
  return { lines: lines.length, mac: last?.mac ?? GENESIS };
}

/** Parses the vault's record of the chain, or returns undefined when it is absent or damaged. */
export function parseChain(json: string | undefined): AuditChain | undefined {
  if (json === undefined) return undefined;
  try {
    const value = JSON.parse(json) as AuditChain;
    if (
      Number.isSafeInteger(value.anchor.seq) &&
      HEX64.test(value.anchor.prev) &&
      Number.isSafeInteger(value.head.seq) &&
      HEX64.test(value.head.mac)
    ) {
      const admin =
        value.admin !== undefined && Number.isSafeInteger(value.admin.lines) && HEX64.test(value.admin.mac)
          ? { ...value.admin }
          : { lines: 0, mac: GENESIS };
      return {
        anchor: { ...value.anchor },
        head: { ...value.head },
        admin,
        ...(value.anchored === true ? { anchored: true } : {}),
      };
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

type Failure = NonNullable<AuditVerifyResponse['failure']>;

/** Verifies the admin file's own chain and end; returns the first failure, if any. */
function verifyAdmin(
  file: string,
  key: Secret,
  admin: { lines: number; mac: string } | undefined,
): { failure?: Failure; seqs: number[] } {
  const lines = readLines(file);
  const seqs: number[] = [];
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const parts = splitLine(lines[i] as string);
    const seq = parts ? parseSeq(parts.body) : null;
    const fail = (reason: string) => ({ failure: { file, line: i + 1, seq, reason }, seqs });
    if (!parts || seq === null) return fail('it is not a keyward audit line (no MAC or no seq): edited');
    if (!macMatches(key, prev, parts.body, parts.mac)) {
      return fail('its MAC does not match: the admin event was edited, removed before it or reordered');
    }
    if (seqs.length > 0 && seq <= (seqs.at(-1) as number)) return fail('its seq is out of order: reordered');
    seqs.push(seq);
    prev = parts.mac;
  }
  if (admin !== undefined && lines.length < admin.lines) {
    const reason = `it ends after ${lines.length} admin events but ${admin.lines} were written: the last ones were removed`;
    return { failure: { file, line: lines.length, seq: seqs.at(-1) ?? null, reason }, seqs };
  }
  if (admin !== undefined && lines.length === admin.lines && admin.lines > 0 && prev !== admin.mac) {
    const reason = 'its last line is not the last admin event the daemon wrote: the end was replaced';
    return { failure: { file, line: lines.length, seq: seqs.at(-1) ?? null, reason }, seqs };
  }
  return { seqs };
}

/**
 * Verifies the chain across `audit.log.1` and `audit.log`, and the admin file's own chain, with
 * the log's key. `chain` gives the ends to hold them to; without it only the lines' own chains
 * are checked. Lines before the first retained one were left by rotation: counted, not failed.
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
  const split = lines.map((l) => splitLine(l.raw));
  const seqs = split.map((s) => (s ? parseSeq(s.body) : null));
  const admin = adminFile(file);
  const adminPresent = fs.lstatSync(admin, { throwIfNoEntry: false }) !== undefined;
  const adminCheck = verifyAdmin(admin, key, chain?.admin);
  const firstSeq = seqs[0] ?? (lines.length === 0 ? (chain?.head.seq ?? 0) + 1 : 1);
  const summary = {
    lines: lines.length,
    files: present,
    rotated: Math.max(0, firstSeq - 1),
    rotated_admin: adminCheck.seqs.filter((s) => s < firstSeq).length,
    ...(adminPresent ? { admin_file: admin } : {}),
  };
  const fail = (index: number, seq: number | null, reason: string): AuditVerifyResponse => {
    const at = lines[index] ?? lines.at(-1);
    return {
      intact: false,
      ...summary,
      failure: { file: at?.file ?? file, line: at?.line ?? 0, seq, reason },
    };
  };

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
  if (adminCheck.failure) return { intact: false, ...summary, failure: adminCheck.failure };
  return { intact: true, ...summary };
}
