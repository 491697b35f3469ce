/**
 * `keyward client add <client> --allow <cred>[,<cred>...]`, `keyward client list [--json]`,
 * `keyward client remove <client>`: MCP servers registered as clients, each limited to the
 * credentials it is allowed. The token is printed once, alone on stdout, and never stored.
 */
import Table from 'cli-table3';
import type { Command } from 'commander';
import type {
  AddClientResponse,
  ClientEntry,
  ClientListResponse,
  RemoveClientResponse,
} from '../../../shared/protocol.js';
import { CliError } from '../cli-error.js';
import { type CliContext, requireName } from '../context.js';
import { printData, relativeTime, say } from '../io.js';

/** Splits and checks an `--allow a,b` list. */
export function parseAllowList(value: string): string[] {
  const names = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (names.length === 0) {
    throw new CliError(
      'INVALID_REQUEST',
      '--allow needs at least one credential name, e.g. --allow github,slack',
    );
  }
  return [...new Set(names.map((name) => requireName(name)))];
}

function clientRoute(name: string): string {
  return `/clients/${encodeURIComponent(name)}`;
}

/** Registers a client and prints its token. */
export async function runClientAdd(input: { name: string; allow: string }, ctx: CliContext): Promise<void> {
  const name = requireName(input.name, 'client');
  const allow = parseAllowList(input.allow);
  const added = await ctx.call<AddClientResponse>('POST', '/clients', { name, allow });
  printData(ctx.io, added.token);
  say(ctx.io, `added client "${name}", allowed: ${added.allow.join(', ')}`);
  say(ctx.io, 'give the token above to that MCP server as KEYWARD_CLIENT_TOKEN; it is shown only this once');
}

/** Renders clients as a table. */
export function clientTable(clients: ClientEntry[], now = Date.now()): string {
  if (clients.length === 0) return 'no clients yet: add one with: keyward client add <client> --allow <cred>';
  const table = new Table({
    head: ['CLIENT', 'ALLOWED', 'CREATED', 'LAST USED'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const c of clients) {
    table.push([
      c.name,
      c.allow.join(', '),
      relativeTime(c.created_at, now),
      c.last_used_at ? relativeTime(c.last_used_at, now) : 'never',
    ]);
  }
  return table.toString();
}

/** Lists the clients. */
export async function runClientList(opts: { json?: boolean }, ctx: CliContext): Promise<void> {
  const { clients } = await ctx.call<ClientListResponse>('GET', '/clients');
  printData(ctx.io, opts.json ? JSON.stringify(clients, null, 2) : clientTable(clients));
}

/** Revokes a client. */
export async function runClientRemove(input: { name: string }, ctx: CliContext): Promise<void> {
  const name = requireName(input.name, 'client');
  await ctx.call<RemoveClientResponse>('DELETE', clientRoute(name));
  say(ctx.io, `removed client "${name}": its token stopped working`);
}

/** Registers the command and its subcommands. */
export function registerClient(program: Command, context: () => CliContext): void {
  const client = program
    .command('client')
    .description('manage the MCP servers allowed to ask for tokens (client tokens)');
  client
    .command('add')
    .description('register a client and print its token (once)')
    .argument('<client>', 'client name: a-z, 0-9, ".", "_", "-"; up to 64 characters')
    .requiredOption('--allow <credentials>', 'comma-separated credentials it may use')
    .action((name: string, opts: { allow: string }) => runClientAdd({ name, allow: opts.allow }, context()));
  client
    .command('list')
    .description('list clients, their allowed credentials, created and last-used times')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => runClientList(opts, context()));
  client
    .command('remove')
    .description('revoke a client at once')
    .argument('<client>', 'client name')
    .action((name: string) => runClientRemove({ name }, context()));
}
