/** `keyward unlock`: unlocks a passphrase vault in the running daemon. */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { readSecretInput, say } from '../io.js';

/** Sends the passphrase to the daemon. */
export async function runUnlock(ctx: CliContext): Promise<void> {
  const passphrase = await readSecretInput(ctx.io, 'vault passphrase: ', 'passphrase');
  await ctx.call('POST', '/vault/unlock', { passphrase });
  say(ctx.io, 'vault unlocked');
}

/** Registers the command. */
export function registerUnlock(program: Command, context: () => CliContext): void {
  program
    .command('unlock')
    .description(
      'unlock a passphrase-protected vault in the running daemon (passphrase from stdin or a prompt)',
    )
    .action(() => runUnlock(context()));
}
