/** `keyward remove <name> [--no-revoke]`: deletes a credential, revoking OAuth tokens first. */
import type { Command } from 'commander';
import type { RemoveCredentialResponse } from '../../../shared/protocol.js';
import { type CliContext, credentialRoute, requireName } from '../context.js';
import { say } from '../io.js';

/** Removes the credential. */
export async function runRemove(input: { name: string; revoke: boolean }, ctx: CliContext): Promise<void> {
  const name = requireName(input.name);
  const result = await ctx.call<RemoveCredentialResponse>('DELETE', credentialRoute(name), {
    revoke: input.revoke,
  });
  say(ctx.io, `removed "${name}"${result.revoked ? ' (its tokens were revoked at the server)' : ''}`);
}

/** Registers the command. */
export function registerRemove(program: Command, context: () => CliContext): void {
  program
    .command('remove')
    .description('delete a credential (OAuth tokens are revoked at the server first, when it supports it)')
    .argument('<name>', 'credential name')
    .option('--no-revoke', 'do not revoke OAuth tokens at the server')
    .action((name: string, opts: { revoke: boolean }) => runRemove({ name, revoke: opts.revoke }, context()));
}
