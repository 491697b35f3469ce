/**
 * `keyward exec --env VAR=<credential> [--env ...] -- <command> [args...]`: runs an unmodified
 * program (most MCP servers read a `GITHUB_TOKEN`-style variable) with current access tokens in
 * its environment. The tokens go only into the child's environment: never to stdout or stderr
 * (the child's stdout is often an MCP stdio channel), never into argv. The child inherits the
 * terminal; SIGTERM, SIGINT and SIGHUP are forwarded to it, and keyward ends the way it ended:
 * with its exit code, or killed by the same signal. The child never inherits a keyward bearer
 * token (`KEYWARD_CLIENT_TOKEN`, the admin token): it gets tokens, not the capability behind them.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import type { Command } from 'commander';
import { KeywardError } from '../../../client/errors.js';
import { requestJson } from '../../../client/transport.js';
import type { TokenResponse } from '../../../shared/protocol.js';
import { tryReadAdminToken } from '../../admin-token.js';
import { CliError } from '../cli-error.js';
import { type CliContext, credentialRoute, requireName } from '../context.js';

/** One `--env VAR=<credential>` binding. */
export interface EnvBinding {
  variable: string;
  credential: string;
}

/** Parsed input of `keyward exec`. */
export interface ExecInput {
  env: EnvBinding[];
  command: string;
  args: string[];
}

/** The signals passed on to the child. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Asks for tokens with this much life left; the daemon caps it at half the token's lifetime, so
 * the child starts with at least half a lifetime (it cannot refresh a token on its own).
 */
const CHILD_MIN_TTL_S = 24 * 60 * 60;

/** Parses `VAR=<credential>`; the variable must be a portable environment variable name. */
export function parseEnvBinding(value: string): EnvBinding {
  const at = value.indexOf('=');
  const variable = at < 0 ? '' : value.slice(0, at);
  const credential = at < 0 ? '' : value.slice(at + 1);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable) || credential === '') {
    throw new CliError(
      'INVALID_REQUEST',
      `--env takes VAR=<credential>, e.g. --env GITHUB_TOKEN=github (got "${value}")`,
    );
  }
  return { variable, credential: requireName(credential) };
}

/** Collects repeated `--env` flags. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Reads the tokens: with `KEYWARD_CLIENT_TOKEN` set (an MCP host started us with a client token)
 * as that client, else as the admin.
 */
async function readTokens(
  ctx: CliContext,
  bindings: EnvBinding[],
  bearer: string | undefined,
): Promise<Record<string, string>> {
  const transport = { socketPath: ctx.paths.socket, bearer, timeoutMs: 120_000 };
  const credentials = [...new Set(bindings.map((b) => b.credential))];
  const tokens = new Map<string, string>();
  try {
    await Promise.all(
      credentials.map(async (name) => {
        const token = await requestJson<TokenResponse>(transport, 'POST', credentialRoute(name, 'token'), {
          min_ttl: CHILD_MIN_TTL_S,
        });
        tokens.set(name, token.access_token);
      }),
    );
  } catch (err) {
    if (err instanceof KeywardError) throw new CliError(err.code, err.message);
    throw err;
  }
  const env: Record<string, string> = {};
  for (const b of bindings) env[b.variable] = tokens.get(b.credential) as string;
  return env;
}

/**
 * Returns the environment the child inherits: ours without `KEYWARD_CLIENT_TOKEN` and without any
 * variable that holds a keyward bearer token (the client token or the admin token, even inside a
 * longer value). A child gets the access tokens it was given, never the capability to ask for more.
 */
export function inheritedEnv(env: NodeJS.ProcessEnv, bearers: Array<string | undefined>): NodeJS.ProcessEnv {
  const held = bearers.filter((b): b is string => b !== undefined && b !== '');
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (name === 'KEYWARD_CLIENT_TOKEN' || value === undefined) continue;
    if (held.some((bearer) => value.includes(bearer))) continue;
    out[name] = value;
  }
  return out;
}

/** Runs the command with the tokens in its environment; resolves with keyward's exit code. */
export async function runExec(input: ExecInput, ctx: CliContext): Promise<number> {
  if (input.env.length === 0) {
    throw new CliError('INVALID_REQUEST', 'say which tokens to pass: --env VAR=<credential> (one or more)');
  }
  const clientToken = process.env.KEYWARD_CLIENT_TOKEN;
  const adminToken = tryReadAdminToken(ctx.paths);
  const bearer = clientToken !== undefined && clientToken !== '' ? clientToken : adminToken;
  const tokenEnv = await readTokens(ctx, input.env, bearer);

  const child = spawn(input.command, input.args, {
    stdio: 'inherit',
    env: { ...inheritedEnv(process.env, [clientToken, adminToken]), ...tokenEnv },
  });
  const forward = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);

  let outcome: { code: number | null; signal: NodeJS.Signals | null };
  try {
    outcome = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Shell conventions: 127 when the command is not found, 126 when it cannot be run.
    if (code === 'ENOENT') throw new CliError('INVALID_REQUEST', `command not found: ${input.command}`, 127);
    throw new CliError('INVALID_REQUEST', `cannot run ${input.command}: ${code ?? 'error'}`, 126);
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  }

  if (outcome.signal !== null) {
    // End the way the child ended, so a supervisor sees the same signal. With our listeners gone
    // the default action applies; should the signal be ignored, fall back to 128 + its number.
    process.kill(process.pid, outcome.signal);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return 128 + (os.constants.signals[outcome.signal] ?? 0);
  }
  return outcome.code ?? 1;
}

/** Registers the command. */
export function registerExec(program: Command, context: () => CliContext): void {
  program
    .command('exec')
    .description(
      'run a command with access tokens in its environment (e.g. an MCP server reading GITHUB_TOKEN)',
    )
    .requiredOption(
      '--env <VAR=credential>',
      'set VAR to a current access token of credential (repeatable)',
      collect,
    )
    .argument('<command>', 'the program to run (put it after --)')
    .argument('[args...]', 'its arguments')
    .usage('--env VAR=<credential> [--env ...] -- <command> [args...]')
    .action(async (command: string, args: string[], opts: { env: string[] }) => {
      const env = opts.env.map(parseEnvBinding);
      process.exitCode = await runExec({ env, command, args }, context());
    });
}
