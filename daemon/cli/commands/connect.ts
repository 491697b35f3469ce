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
 *
 * `keyward connect <server> --remote <url>` is the same paste for a remote MCP server (what
 * `npx mcp-remote <url>` is used for): it adds credential `<server>` as `add --mcp-server` does
 * (or reuses it when it exists for that URL) and prints the entry that runs `keyward proxy
 * <server>`. That entry needs no client token: the proxy is keyward's own CLI and asks the daemon
 * as the user, like `keyward token` does.
 */
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import { currentPathInputs, type KeywardPaths, resolvePaths } from '../../../shared/paths.js';
import type {
  AddClientResponse,
  AddOAuthRequest,
  CredentialStatus,
  PolicyResponse,
  StatusResponse,
} from '../../../shared/protocol.js';
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
  command: string | undefined;
  args: string[];
  /** `--remote <url>`: a remote MCP server run through `keyward proxy`. */
  remote?: string;
  scope?: string;
  clientId?: string;
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

/**
 * Returns the `env` an entry needs so that a host started without keyward's environment finds
 * this daemon: `KEYWARD_HOME` and `KEYWARD_SOCKET`, each only where it differs from what a bare
 * environment (no `KEYWARD_*`, no `XDG_*`) would resolve.
 */
export function daemonEnv(paths: KeywardPaths): Record<string, string> {
  const inputs = currentPathInputs();
  const bare = resolvePaths({ ...inputs, env: { LOCALAPPDATA: inputs.env.LOCALAPPDATA } });
  const env: Record<string, string> = {};
  if (paths.home !== bare.home) env.KEYWARD_HOME = paths.home;
  if (paths.socket !== bare.socket) env.KEYWARD_SOCKET = paths.socket;
  return env;
}

/** The MCP server URI as `add --mcp-server` stores it (the daemon's canonical form: no fragment, no lone `/`). */
function canonicalServerUri(value: string): string {
  const url = new URL(value);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.protocol}//${url.host}${path}${url.search}`;
}

/** Adds the remote server's credential, or checks that the existing one is for the same URL. */
async function ensureRemoteCredential(
  ctx: CliContext,
  server: string,
  input: ConnectInput & { remote: string },
): Promise<'added' | 'reused'> {
  let wanted: string;
  try {
    wanted = canonicalServerUri(input.remote);
  } catch {
    throw new CliError('INVALID_REQUEST', `--remote takes the server's URL, not "${input.remote}"`);
  }
  const status = await ctx.call<StatusResponse>('GET', '/status');
  const existing: CredentialStatus | undefined = status.credentials.find((c) => c.name === server);
  if (existing !== undefined) {
    if (existing.mcp_server === wanted) return 'reused';
    const what =
      existing.mcp_server !== undefined
        ? `the remote MCP server ${existing.mcp_server}`
        : `a ${existing.kind === 'api_key' ? 'static key' : 'credential that is not for a remote MCP server'}`;
    throw new CliError(
      'ALREADY_EXISTS',
      `credential "${server}" already exists for ${what}: pick another name, or remove it first: keyward remove ${server}`,
    );
  }
  const request: AddOAuthRequest = { name: server, kind: 'oauth', mcp_server: input.remote };
  if (input.clientId !== undefined) request.client_id = input.clientId;
  if (input.scope !== undefined) request.scope = input.scope;
  await ctx.call<CredentialStatus>('POST', '/credentials', request);
  return 'added';
}

/** Prints the entry that runs `keyward proxy <server>` for a remote MCP server. */
async function runConnectRemote(
  input: ConnectInput & { remote: string },
  server: string,
  ctx: CliContext,
): Promise<void> {
  if (input.command !== undefined || input.env.length > 0 || input.allow !== undefined) {
    throw new CliError(
      'INVALID_REQUEST',
      '--remote runs keyward proxy: give no command, --env or --allow with it (see: keyward connect --help)',
    );
  }
  const outcome = await ensureRemoteCredential(ctx, server, input);
  const entry: ServerEntry = {
    command: process.execPath,
    args: [cliEntry(), 'proxy', server],
    env: daemonEnv(ctx.paths),
  };
  printData(ctx.io, JSON.stringify(configDocument(input.format, server, entry), null, 2));
  say(
    ctx.io,
    outcome === 'added'
      ? `added credential "${server}" for ${input.remote}`
      : `credential "${server}" exists for ${input.remote}; using it`,
  );
  say(ctx.io, `${whereToMerge(input.format)}; it holds no secret`);
  say(
    ctx.io,
    `log in now with: keyward login ${server} (else the proxy shows the login URL when the host first starts it)`,
  );
}

function whereToMerge(format: ConnectFormat): string {
  return format === 'vscode'
    ? 'merge it into .vscode/mcp.json (or your user mcp.json)'
    : 'merge it into your MCP client configuration (claude_desktop_config.json, or .mcp.json for Claude Code)';
}

/** Prints the configuration entry, registering a client first when access control asks for one. */
export async function runConnect(input: ConnectInput, ctx: CliContext): Promise<void> {
  const server = requireName(input.server, 'server');
  if (input.remote !== undefined) return runConnectRemote({ ...input, remote: input.remote }, server, ctx);
  if (input.scope !== undefined || input.clientId !== undefined) {
    throw new CliError('INVALID_REQUEST', '--scope and --client-id go with --remote <url>');
  }
  const command = input.command;
  if (command === undefined) {
    throw new CliError(
      'INVALID_REQUEST',
      'say what to run: keyward connect <server> -- <command> [args...], or keyward connect <server> --remote <url>',
    );
  }
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

  const entry: ServerEntry = { ...serverCommand(bindings, command, input.args), env };
  printData(ctx.io, JSON.stringify(configDocument(input.format, server, entry), null, 2));
  say(ctx.io, whereToMerge(input.format));
  if (clientToken) {
    say(
      ctx.io,
      `registered client "${server}"; its token is in the entry above and shown only this once ` +
        `(revoke it with: keyward client remove ${server})`,
    );
    // Issue 12: a project file such as .mcp.json or .vscode/mcp.json is often committed.
    say(
      ctx.io,
      'warning: the entry holds a client token (KEYWARD_CLIENT_TOKEN): keep it out of git: put it in your ' +
        'user-level configuration rather than a project file, or add that file to .gitignore',
    );
  }
}

/** Registers the command. */
export function registerConnect(program: Command, context: () => CliContext): void {
  program
    .command('connect')
    .description('print the MCP-client configuration entry that runs an MCP server through keyward')
    .argument('<server>', 'the server name in the configuration (and its client name)')
    .argument('[command]', 'the program that runs the MCP server (put it after --)')
    .argument('[args...]', 'its arguments')
    .option('--allow <credentials>', 'register a client token allowed these credentials (comma-separated)')
    .option(
      '--env <VAR=credential>',
      'run the server through keyward exec with VAR set to a token (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--remote <url>', 'a remote MCP server: add its credential and run it through keyward proxy')
    .option('--scope <scopes>', 'with --remote: the scopes to ask for (space-separated)')
    .option(
      '--client-id <id>',
      'with --remote: a client registered at the server (default: dynamic registration)',
    )
    .addOption(
      new Option('--format <format>', 'configuration format').choices([...CONNECT_FORMATS]).default('claude'),
    )
    .usage(
      '<server> [--allow <cred>,...] [--env VAR=<cred> ...] [--format claude|vscode] -- <command> [args...]\n' +
        '       keyward connect <server> --remote <url> [--scope "a b"] [--client-id ID] [--format claude|vscode]',
    )
    .action(
      (
        server: string,
        command: string | undefined,
        args: string[],
        opts: {
          allow?: string;
          env?: string[];
          format: ConnectFormat;
          remote?: string;
          scope?: string;
          clientId?: string;
        },
      ) =>
        runConnect(
          {
            server,
            allow: opts.allow,
            env: opts.env ?? [],
            format: opts.format,
            command,
            args,
            ...(opts.remote !== undefined ? { remote: opts.remote } : {}),
            ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
            ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
          },
          context(),
        ),
    );
}
