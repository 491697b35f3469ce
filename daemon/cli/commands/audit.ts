/**
 * `keyward audit [--json] [--verify]`: the audit log. Listing reads `audit.log.1` and `audit.log`
 * directly (and, before them, the admin events that rotation took out of them, from
 * `audit.log.admin`), so it works with the daemon down; `--verify` asks the daemon, which holds
 * the MAC key (derived from the vault's data key), exits 1 naming the first line that was edited,
 * removed or reordered, and says how many lines rotation left behind. A line with `count` stands
 * for that many refusals of one kind (see audit-coalescer.ts).
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { EXIT } from '../../../shared/errors.js';
import type { AuditVerifyResponse } from '../../../shared/protocol.js';
import { type AuditEntry, readAuditEntries } from '../../audit-log.js';
import { inertField } from '../../inert-text.js';
import type { CliContext } from '../context.js';
import { printData, say } from '../io.js';

/** Renders audit entries as a table, oldest first. */
export function auditTable(entries: AuditEntry[]): string {
  if (entries.length === 0) return 'the audit log is empty';
  const table = new Table({
    head: ['TIME', 'EVENT', 'CREDENTIAL', 'CALLER', 'PID', 'UID', 'EXE', 'OUTCOME', 'REFRESHED'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  // Every cell escaped, newline included: a path with a newline must not fake a row.
  const dash = (v: unknown): string => (v === null || v === undefined ? '-' : inertField(String(v)));
  for (const e of entries) {
    const caller = e.client ? `client ${inertField(e.client)}` : dash(e.caller);
    const what = inertField(e.target ? `${e.event} ${e.target}` : e.event);
    table.push([
      dash(e.ts),
      what,
      dash(e.credential),
      caller,
      dash(e.peer?.pid),
      dash(e.peer?.uid),
      dash(e.peer?.exe),
      inertField(`${e.code ? `${e.outcome} (${e.code})` : e.outcome}${e.count ? ` x${e.count}` : ''}`),
      dash(e.refreshed),
    ]);
  }
  return table.toString();
}

/** Describes a verification result in one sentence. */
export function describeVerification(result: AuditVerifyResponse): string {
  const rotated =
    result.rotated > 0
      ? `; ${result.rotated} earlier line${result.rotated === 1 ? '' : 's'} left by rotation (${result.rotated_admin} admin event${result.rotated_admin === 1 ? '' : 's'} among them kept in ${result.admin_file ?? 'the admin file'})`
      : '';
  if (result.intact) {
    return `audit log intact: ${result.lines} line${result.lines === 1 ? '' : 's'} (${result.files.join(', ') || 'no files yet'})${rotated}`;
  }
  const f = result.failure;
  if (!f) return 'audit log NOT intact';
  return `audit log NOT intact: ${f.file} line ${f.line}${f.seq === null ? '' : ` (seq ${f.seq})`}: ${f.reason}`;
}

/** Prints the log, or verifies it; returns the exit code. */
export async function runAudit(opts: { json?: boolean; verify?: boolean }, ctx: CliContext): Promise<number> {
  if (opts.verify) {
    const result = await ctx.call<AuditVerifyResponse>('GET', '/audit/verify');
    if (opts.json) printData(ctx.io, JSON.stringify(result, null, 2));
    else printData(ctx.io, describeVerification(result));
    if (!result.intact && opts.json) say(ctx.io, describeVerification(result));
    return result.intact ? EXIT.OK : EXIT.ERROR;
  }
  const entries = readAuditEntries(ctx.paths.auditLog);
  if (opts.json) {
    // JSON lines, as stored: one object per line, ready for jq.
    for (const entry of entries) printData(ctx.io, JSON.stringify(entry));
  } else {
    printData(ctx.io, auditTable(entries));
  }
  return EXIT.OK;
}

/** Registers the command. */
export function registerAudit(program: Command, context: () => CliContext): void {
  program
    .command('audit')
    .description('show the audit log (tokens served or denied, refused connections, admin changes)')
    .option('--json', 'print the entries as JSON lines')
    .option(
      '--verify',
      "check the log's MAC chain; exit 1 naming the first edited, removed or reordered line",
    )
    .action(async (opts: { json?: boolean; verify?: boolean }) => {
      process.exitCode = await runAudit(opts, context());
    });
}
