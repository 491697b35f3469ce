/** `keyward daemon`: runs the daemon in the foreground until SIGTERM or SIGINT. */
import type { Command } from 'commander';
import { runDaemon } from '../../daemon.js';
import { describeStartupError } from '../../listener.js';
import { CliError } from '../cli-error.js';

/** Registers the command. */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description(
      'run the daemon in the foreground (creates the vault on first start); logs JSON lines to stderr',
    )
    .action(async () => {
      try {
        process.exitCode = await runDaemon();
      } catch (err) {
        throw new CliError('INTERNAL', describeStartupError(err));
      }
      // Signal handlers resolved; leave nothing (timers, keep-alive sockets) holding the process.
      process.exit(process.exitCode ?? 0);
    });
}
