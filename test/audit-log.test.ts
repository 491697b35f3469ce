/**
 * The MAC-chained audit log on a real vault (its key and its settings): every kind of tampering
 * is named at the right line, the chain survives rotation and restarts, and unsafe files are
 * refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { type TestContext, test } from 'node:test';
import { AUDIT_CHAIN_SETTING, AuditLog, readAuditEntries, verifyAuditLog } from '../daemon/audit-log.js';
import { FsSafetyError } from '../daemon/fs-safety.js';
import { Vault } from '../daemon/vault/vault.js';
import { makeTmpHome } from './helpers/tmp-home.js';

async function setup(t: TestContext) {
  const tmp = makeTmpHome(t);
  const vault = await Vault.create(tmp.paths, { keyStore: 'file' });
  t.after(() => vault.close());
  const file = tmp.paths.auditLog;
  const warnings: string[] = [];
  const open = (maxBytes?: number) => {
    const log = new AuditLog({
      file,
      store: vault,
      ...(maxBytes ? { maxBytes } : {}),
      onWarning: (m) => warnings.push(m),
    });
    log.start(vault.deriveKey('audit-log'));
    t.after(() => log.close());
    return log;
  };
  const verify = () => verifyAuditLog(file, vault.deriveKey('audit-log'), chain());
  const chain = () => JSON.parse(vault.getSetting(AUDIT_CHAIN_SETTING) ?? 'null');
  return { ...tmp, vault, file, open, verify, chain, warnings };
}

function writeEvents(log: AuditLog, count: number, from = 0): void {
  for (let i = from; i < from + count; i++) {
    log.append({
      event: 'token',
      credential: `cred-${i}`,
      client: 'mcp',
      caller: 'client',
      peer: { pid: 1000 + i, uid: 1000, exe: '/usr/bin/node' },
      outcome: 'ok',
      refreshed: i % 2 === 0,
    });
  }
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
const rewrite = (file: string, content: string[]) => fs.writeFileSync(file, `${content.join('\n')}\n`);

test('lines carry the contract fields, a seq and a MAC; the file is 0600', async (t) => {
  const { open, file } = await setup(t);
  const log = open();
  writeEvents(log, 3);
  log.close();
  const [first] = readAuditEntries(file);
  assert.deepEqual(Object.keys(first ?? {}), [
    'seq',
    'ts',
    'event',
    'credential',
    'client',
    'caller',
    'target',
    'peer',
    'outcome',
    'code',
    'refreshed',
    'mac',
  ]);
  assert.equal(first?.seq, 1);
  assert.deepEqual(first?.peer, { pid: 1000, uid: 1000, exe: '/usr/bin/node' });
  assert.match(first?.mac ?? '', /^[0-9a-f]{64}$/);
  if (process.platform !== 'win32') assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

test('verify passes on an intact log and names the first edited, removed or reordered line', async (t) => {
  const { open, file, verify } = await setup(t);
  const log = open();
  writeEvents(log, 6);
  log.close();
  const original = lines(file);
  assert.deepEqual(verify(), { intact: true, lines: 6, files: [file], rotated: 0, rotated_admin: 0 });

  // An edit that keeps the line valid JSON with its MAC: only the MAC can tell.
  const edited = [...original];
  edited[2] = (edited[2] as string).replace('"cred-2"', '"cred-X"');
  rewrite(file, edited);
  let result = verify();
  assert.equal(result.intact, false);
  assert.equal(result.failure?.line, 3);
  assert.equal(result.failure?.seq, 3);
  assert.match(result.failure?.reason ?? '', /edited/);

  // A removed line: the next one is named, as following a gap.
  rewrite(
    file,
    original.filter((_, i) => i !== 3),
  );
  result = verify();
  assert.equal(result.failure?.line, 4);
  assert.match(result.failure?.reason ?? '', /seq 5 where 4 was expected: a line was removed/);

  // Two lines swapped: the first out of place is named as reordered.
  const swapped = [...original];
  [swapped[1], swapped[2]] = [swapped[2] as string, swapped[1] as string];
  rewrite(file, swapped);
  result = verify();
  assert.equal(result.failure?.line, 2);
  assert.match(result.failure?.reason ?? '', /reordered/);

  // Seq renumbered to hide a removal: the MAC chain still breaks there.
  const renumbered = original
    .filter((_, i) => i !== 3)
    .map((l, i) => l.replace(/^\{"seq":\d+/, `{"seq":${i + 1}`));
  rewrite(file, renumbered);
  result = verify();
  assert.equal(result.failure?.line, 4);
  assert.match(result.failure?.reason ?? '', /MAC does not match/);

  // The first line removed (caught by the anchor) and the last one (caught by the head).
  rewrite(file, original.slice(1));
  result = verify();
  assert.equal(result.failure?.line, 1);
  assert.match(result.failure?.reason ?? '', /removed before it/);
  rewrite(file, original.slice(0, -1));
  result = verify();
  assert.match(result.failure?.reason ?? '', /ends at seq 5 but seq 6 was written/);

  // A line that is not ours at all.
  rewrite(file, [...original.slice(0, 2), 'garbage', ...original.slice(2)]);
  result = verify();
  assert.equal(result.failure?.line, 3);

  rewrite(file, original);
  assert.equal(verify().intact, true);
});

test('a line MACed under another key fails: the key comes from this vault', async (t) => {
  const { open, file, chain } = await setup(t);
  const log = open();
  writeEvents(log, 2);
  log.close();
  const other = await setup(t);
  const result = verifyAuditLog(file, other.vault.deriveKey('audit-log'), chain());
  assert.equal(result.intact, false);
  assert.equal(result.failure?.line, 1);
});

test('rotation keeps the chain verifiable across audit.log.1 and audit.log, and drops older files', async (t) => {
  const { open, file, verify } = await setup(t);
  const log = open(2048);
  writeEvents(log, 40);
  assert.ok(fs.existsSync(`${file}.1`), 'the log did not rotate');
  assert.ok(fs.statSync(file).size <= 2048);
  let result = log.verify();
  assert.equal(result.intact, true, JSON.stringify(result.failure));
  assert.deepEqual(result.files, [`${file}.1`, file]);
  const seqs = readAuditEntries(file).map((e) => e.seq);
  assert.equal(seqs.at(-1), 40);
  // The oldest retained line is not seq 1: earlier files were dropped, and that is not tampering.
  const oldest = readAuditEntries(file)[0]?.seq ?? 0;
  assert.ok(oldest > 1, `oldest retained seq ${oldest}`);
  log.close();
  assert.equal(verify().intact, true);

  // Tampering in the older file is named there.
  const older = lines(`${file}.1`);
  rewrite(`${file}.1`, older.slice(1));
  result = verify();
  assert.equal(result.failure?.file, `${file}.1`);
  assert.equal(result.failure?.line, 1);
  rewrite(`${file}.1`, older);
  // Dropping the whole newer file is a truncation.
  const newer = fs.readFileSync(file);
  fs.writeFileSync(file, '');
  assert.match(verify().failure?.reason ?? '', /last lines were removed/);
  fs.writeFileSync(file, newer);
  assert.equal(verify().intact, true);
});

test('a restart continues the chain; lines cut while the daemon was down are reported', async (t) => {
  const { open, file, verify, warnings } = await setup(t);
  let log = open();
  writeEvents(log, 3);
  log.close();
  log = open();
  writeEvents(log, 2, 3);
  log.close();
  assert.deepEqual(
    readAuditEntries(file).map((e) => e.seq),
    [1, 2, 3, 4, 5],
  );
  assert.equal(verify().intact, true);

  rewrite(file, lines(file).slice(0, 3));
  log = open();
  assert.match(warnings.join('\n'), /ends before seq 5/);
  writeEvents(log, 1, 5);
  const result = log.verify();
  assert.equal(result.failure?.line, 4);
  assert.match(result.failure?.reason ?? '', /seq 6 where 4 was expected/);
});

test('entries recorded before the key is known (a locked vault) are written, in order, once it is', async (t) => {
  const { vault, file } = await setup(t);
  const log = new AuditLog({ file, store: vault });
  t.after(() => log.close());
  log.append({ event: 'connection.refused', outcome: 'denied', code: 'FORBIDDEN' });
  log.append({ event: 'token', credential: 'a', outcome: 'error', code: 'VAULT_LOCKED' });
  assert.equal(fs.existsSync(file), false);
  log.start(vault.deriveKey('audit-log'));
  assert.deepEqual(
    readAuditEntries(file).map((e) => [e.seq, e.event]),
    [
      [1, 'connection.refused'],
      [2, 'token'],
    ],
  );
  assert.equal(log.verify().intact, true);
});

test('a log with no chain record (an earlier vault) is set aside, not chained onto', async (t) => {
  const { open, file, home, warnings } = await setup(t);
  fs.writeFileSync(file, '{"seq":1,"ts":"x","event":"token","mac":"00"}\n', { mode: 0o600 });
  const log = open();
  writeEvents(log, 1);
  assert.equal(log.verify().intact, true);
  assert.ok(fs.readdirSync(home).some((f) => f.startsWith('audit.log.orphan-')));
  assert.match(warnings.join('\n'), /not written under this vault/);
});

test('a symlinked, loose or foreign audit.log is refused', {
  skip: process.platform === 'win32',
}, async (t) => {
  const { vault, file, home } = await setup(t);
  const target = `${home}/elsewhere`;
  fs.writeFileSync(target, '', { mode: 0o600 });
  fs.symlinkSync(target, file);
  assert.throws(
    () => new AuditLog({ file, store: vault }),
    (err: unknown) => err instanceof FsSafetyError && err.reason === 'symlink',
  );
  fs.unlinkSync(file);
  fs.writeFileSync(file, '', { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  assert.throws(
    () => new AuditLog({ file, store: vault }),
    (err: unknown) => err instanceof FsSafetyError && err.reason === 'too-open',
  );
});
