/**
 * `keyward status [--json]`: the daemon, the vault and every credential. With the daemon down it
 * says so and how to start it, lists the credentials from the vault's clear metadata, and exits 3.
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import { EXIT } from '../../../shared/errors.js';
import type { CredentialStatus, StatusResponse } from '../../../shared/protocol.js';
import { VERSION } from '../../../shared/version.js';
import { sandboxCheck } from '../../doctor/sandbox-check.js';
import { inertField } from '../../inert-text.js';
import { CliError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { printData, relativeTime, say } from '../io.js';

/** The status shown when the daemon is down: the status object's shape, with `running: false`. */
export interface OfflineStatus {
  version: string;
  running: false;
  pid: null;
  uptime_s: null;
  socket: string;
  vault: { path: string; key_store: string | null; credentials: number; exists: boolean };
  credentials: CredentialStatus[];
}

async function offlineStatus(ctx: CliContext): Promise<OfflineStatus> {
  // Only the daemon-down path reads the vault: load SQLite and sodium just for it.
  const { Vault } = await import('../../vault/vault.js');
  const { describeStatic } = await import('../../credential-service.js');
  const exists = Vault.exists(ctx.paths);
  const meta = exists ? Vault.readMetadata(ctx.paths) : undefined;
  const credentials = meta?.credentials.map(describeStatic) ?? [];
  return {
    version: VERSION,
    running: false,
    pid: null,
    uptime_s: null,
    socket: ctx.paths.socket,
    vault: {
      path: ctx.paths.vault,
      key_store: meta?.keyStore ?? null,
      credentials: credentials.length,
      exists,
    },
    credentials,
  };
}

function lastError(entry: CredentialStatus, now: number): string {
  if (!entry.last_error) return '-';
  return `${inertField(entry.last_error.code)} (${relativeTime(entry.last_error.at, now)})`;
}

/** Renders the credentials as a table. */
export function credentialTable(credentials: CredentialStatus[], now = Date.now()): string {
  if (credentials.length === 0) return 'no credentials yet: add one with: keyward add <name> --api-key';
  const table = new Table({
    head: ['NAME', 'KIND', 'STATE', 'GRANT', 'ISSUER', 'SCOPE', 'EXPIRES', 'REFRESHED', 'LAST ERROR'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  // Every cell escaped, newline included: a scope is the authorization server's to choose.
  const cell = (v: string | null): string => (v === null ? '-' : inertField(v));
  for (const c of credentials) {
    table.push([
      cell(c.name),
      cell(c.kind),
      cell(c.state),
      cell(c.grant),
      cell(c.issuer),
      cell(c.scope),
      c.kind === 'api_key' ? 'never' : relativeTime(c.expires_at, now),
      relativeTime(c.last_refresh_at, now),
      lastError(c, now),
    ]);
  }
  return table.toString();
}

function hints(credentials: CredentialStatus[]): string[] {
  return credentials
    .filter((c) => c.state === 'needs_login')
    .map(
      (c) =>
        `"${inertField(c.name)}" needs a login: run: keyward login ${inertField(c.name)}${c.grant === 'device_code' ? ' --device' : ''}`,
    );
}

/** Prints the status; exits 3 when the daemon is unreachable. */
export async function runStatus(opts: { json?: boolean }, ctx: CliContext): Promise<number> {
  let status: StatusResponse;
  try {
    status = await ctx.call<StatusResponse>('GET', '/status');
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'DAEMON_UNAVAILABLE') throw err;
    const offline = await offlineStatus(ctx);
    say(ctx.io, `keyward: DAEMON_UNAVAILABLE: ${err.message}`);
    if (opts.json) printData(ctx.io, JSON.stringify(offline, null, 2));
    else {
      printData(ctx.io, `daemon: not running (socket ${ctx.paths.socket})`);
      printData(
        ctx.io,
        offline.vault.exists
          ? `vault:  ${offline.vault.path} (key store: ${offline.vault.key_store}, ${offline.vault.credentials} credentials)`
          : `vault:  none yet at ${offline.vault.path} (keyward daemon creates one, or: keyward init)`,
      );
      if (offline.vault.exists) printData(ctx.io, credentialTable(offline.credentials));
    }
    return EXIT.DAEMON_UNREACHABLE;
  }
  if (opts.json) {
    printData(ctx.io, JSON.stringify(status, null, 2));
    return EXIT.OK;
  }
  printData(
    ctx.io,
    `daemon: running, pid ${status.pid}, up ${Math.round(status.uptime_s)}s, version ${status.version}`,
  );
  printData(ctx.io, `socket: ${status.socket}`);
  printData(
    ctx.io,
    `vault:  ${status.vault.path} (key store: ${status.vault.key_store}, ${status.vault.credentials} credentials${status.vault.locked ? ', LOCKED: run: keyward unlock' : ''})`,
  );
  if (status.policy) printData(ctx.io, `policy: ${status.policy}`);
  // Only for the systemd service: the reasons are doctor's business, this is the one-line verdict.
  const sandbox = sandboxCheck(status.sandbox, undefined, []);
  if (sandbox) {
    printData(
      ctx.io,
      sandbox.status === 'ok'
        ? 'sandbox: in effect (systemd)'
        : `sandbox: ${sandbox.message.split(';')[0]} (run: keyward doctor)`,
    );
  }
  printData(ctx.io, credentialTable(status.credentials));
  for (const hint of hints(status.credentials)) say(ctx.io, hint);
  return EXIT.OK;
}

/** Registers the command. */
export function registerStatus(program: Command, context: () => CliContext): void {
  program
    .command('status')
    .description('show the daemon, the vault and every credential')
    .option('--json', 'print the status object as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await runStatus(opts, context());
    });
}
