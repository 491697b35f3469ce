/** `keyward token <name> [--min-ttl SECONDS]`: prints a valid access token and a newline. */
import type { Command } from 'commander';
import type { TokenResponse } from '../../../shared/protocol.js';
import { CliError } from '../cli-error.js';
import { type CliContext, credentialRoute, requireName } from '../context.js';
import { printData } from '../io.js';

/** Parsed input of `keyward token`. */
export interface TokenInput {
  name: string;
  minTtl?: number;
}

/** Prints the credential's current access token. */
export async function runToken(input: TokenInput, ctx: CliContext): Promise<void> {
  const body = input.minTtl === undefined ? {} : { min_ttl: input.minTtl };
  const token = await ctx.call<TokenResponse>(
    'POST',
    credentialRoute(requireName(input.name), 'token'),
    body,
  );
  printData(ctx.io, token.access_token);
}

/** Parses a whole number of seconds from a flag. */
export function parseSeconds(value: string): number {
  if (!/^\d{1,9}$/.test(value))
    throw new CliError('INVALID_REQUEST', `"${value}" is not a whole number of seconds`);
  return Number(value);
}

/** Registers the command. */
export function registerToken(program: Command, context: () => CliContext): void {
  program
    .command('token')
    .description('print a valid access token for a credential')
    .argument('<name>', 'credential name')
    .option(
      '--min-ttl <seconds>',
      'seconds the token must stay valid (capped at half its lifetime)',
      parseSeconds,
    )
    .action((name: string, opts: { minTtl?: number }) => runToken({ name, ...opts }, context()));
}
