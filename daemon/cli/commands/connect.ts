/**
 * `keyward connect <server> [--allow <cred>,...] [--env VAR=<cred> ...] [--format claude|vscode]
 * -- <command> [args...]`: prints the MCP-client configuration entry that runs an MCP server
 * through keyward, so connecting one is a paste:
 * - with `--env`, the entry runs `keyward exec --env ... -- <command>`, so an unmodified server
 *   gets its tokens in its environment; without, it runs the command itself (a server that uses
 *   keyward's SDK asks the daemon on its own);
 * - with `--allow`, or when the policy is `strict`, a client named `<server>` is registered and its
 *   new token goes into the entry's `env` as `KEYWARD_CLIENT_TOKEN` (the only copy: keyward keeps
 *   its hash). Credentials named by `--env` are allowed too, since the entry needs them;
 * - the entry's `env` names the daemon's socket, so a host with another environment finds it.
 * Absolute paths (node and keyward's own entry) keep it working under a host's minimal PATH.
 */
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import type { AddClientResponse, PolicyResponse } from '../../../shared/protocol.js';
import { CliError } from '../cli-error.js';
import { type CliContext, requireName } from '../context.js';
import { printData, say } from '../io.js';
import { parseAllowList } from './client.js';
import { type EnvBinding, parseEnvBinding } from './exec.js';

/** The configuration formats: Claude's `mcpServers` (Claude Desktop, Claude Code) and VS Code's `servers`. */
export const CONNECT_FORMATS = ['claude', 'vscode'] as const;

/** One of `CONNECT_FORMATS`. */
export type ConnectFormat = (typeof CONNECT_FORMATS)[number];

/** Parsed input of `keyward connect`. */
export interface ConnectInput {
  server: string;
  allow?: string;
  env: string[];
  format: ConnectFormat;
  command: string;
  args: string[];
}

/** How an MCP host starts the server. */
export interface ServerEntry {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** The built CLI entry (this file is dist/daemon/cli/commands/connect.js). */
function cliEntry(): string {
  return fileURLToPath(new URL('../main.js', import.meta.url));
}

/** Builds the command line the host runs: `keyward exec ... -- <command>` when tokens go into env. */
export function serverCommand(
  bindings: EnvBinding[],
  command: string,
  args: string[],
): Pick<ServerEntry, 'command' | 'args'> {
  if (bindings.length === 0) return { command, args };
  const envArgs = bindings.flatMap((b) => ['--env', `${b.variable}=${b.credential}`]);
  return { command: process.execPath, args: [cliEntry(), 'exec', ...envArgs, '--', command, ...args] };
}

/** Wraps the entry in the format's document. */
export function configDocument(format: ConnectFormat, server: string, entry: ServerEntry): unknown {
  if (format === 'vscode') return { servers: { [server]: { type: 'stdio', ...entry } } };
  return { mcpServers: { [server]: entry } };
}

/** Prints the configuration entry, registering a client first when access control asks for one. */
export async function runConnect(input: ConnectInput, ctx: CliContext): Promise<void> {
  const server = requireName(input.server, 'server');
  const bindings = input.env.map(parseEnvBinding);
  const allowed = input.allow === undefined ? [] : parseAllowList(input.allow);

  const { policy } = await ctx.call<PolicyResponse>('GET', '/policy');
  const env: Record<string, string> = { KEYWARD_SOCKET: ctx.paths.socket };
  let clientToken = false;
  if (input.allow !== undefined || policy === 'strict') {
    const allow = [...new Set([...allowed, ...bindings.map((b) => b.credential)])];
    if (allow.length === 0) {
      throw new CliError(
        'INVALID_REQUEST',
        `the policy is strict, so "${server}" needs a client token: say what it may use with --allow <cred>,... or --env VAR=<cred>`,
      );
    }
    const added = await ctx.call<AddClientResponse>('POST', '/clients', { name: server, allow });
    env.KEYWARD_CLIENT_TOKEN = added.token;
    clientToken = true;
  }

  const entry: ServerEntry = { ...serverCommand(bindings, input.command, input.args), env };
  printData(ctx.io, JSON.stringify(configDocument(input.format, server, entry), null, 2));
  const where =
    input.format === 'vscode'
      ? 'merge it into .vscode/mcp.json (or your user mcp.json)'
      : 'merge it into your MCP client configuration (claude_desktop_config.json, or .mcp.json for Claude Code)';
  say(ctx.io, `${where}`);
  if (clientToken) {
    say(
      ctx.io,
      `registered client "${server}"; its token is in the entry above and shown only this once ` +
        `(revoke it with: keyward client remove ${server})`,
    );
  }
}

/** Registers the command. */
export function registerConnect(program: Command, context: () => CliContext): void {
  program
    .command('connect')
    .description('print the MCP-client configuration entry that runs an MCP server through keyward')
    .argument('<server>', 'the server name in the configuration (and its client name)')
    .argument('<command>', 'the program that runs the MCP server (put it after --)')
    .argument('[args...]', 'its arguments')
    .option('--allow <credentials>', 'register a client token allowed these credentials (comma-separated)')
    .option(
      '--env <VAR=credential>',
      'run the server through keyward exec with VAR set to a token (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(
      new Option('--format <format>', 'configuration format').choices([...CONNECT_FORMATS]).default('claude'),
    )
    .usage(
      '<server> [--allow <cred>,...] [--env VAR=<cred> ...] [--format claude|vscode] -- <command> [args...]',
    )
    .action(
      (
        server: string,
        command: string,
        args: string[],
        opts: { allow?: string; env?: string[]; format: ConnectFormat },
      ) =>
        runConnect(
          { server, allow: opts.allow, env: opts.env ?? [], format: opts.format, command, args },
          context(),
        ),
    );
}
