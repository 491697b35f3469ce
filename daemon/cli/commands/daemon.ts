/** `keyward daemon`: runs the daemon in the foreground until SIGTERM or SIGINT. */
import type { Command } from 'commander';
import { CliError } from '../cli-error.js';

/** Registers the command. */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description(
      'run the daemon in the foreground (creates the vault on first start); logs JSON lines to stderr',
    )
    .action(async () => {
      // Loaded here, not at the top: other commands should not pay for fastify and the engine.
      const { runDaemon } = await import('../../daemon.js');
      const { describeStartupError } = await import('../../listener.js');
      try {
        process.exitCode = await runDaemon();
      } catch (err) {
        const { code, message } = describeStartupError(err);
        throw new CliError(code, message, 1);
      }
      // Signal handlers resolved; leave nothing (timers, keep-alive sockets) holding the process.
      process.exit(process.exitCode ?? 0);
    });
}
