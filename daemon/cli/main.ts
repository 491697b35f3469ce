#!/usr/bin/env node
/**
 * The `keyward` command. Each subcommand lives in commands/<name>.ts; this file wires them into
 * commander and turns every failure into `keyward: <CODE>: <message>` with the contract's exit code.
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from '../../shared/errors.js';
import { VERSION } from '../../shared/version.js';
import { inertText } from '../inert-text.js';
import { CliError } from './cli-error.js';
import { registerAdd } from './commands/add.js';
import { registerAudit } from './commands/audit.js';
import { registerClient } from './commands/client.js';
import { registerConnect } from './commands/connect.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDoctor } from './commands/doctor.js';
import { registerExec } from './commands/exec.js';
import { registerInit } from './commands/init.js';
import { registerLogin } from './commands/login.js';
import { registerPolicy } from './commands/policy.js';
import { registerProxy } from './commands/proxy.js';
import { registerRemove } from './commands/remove.js';
import { registerRotateKey } from './commands/rotate-key.js';
import { registerService } from './commands/service.js';
import { registerStatus } from './commands/status.js';
import { registerToken } from './commands/token.js';
import { registerUnlock } from './commands/unlock.js';
import { createContext } from './context.js';

/** Builds the program; exported so tests can inspect the command tree. */
export function buildProgram(): Command {
  const program = new Command('keyward')
    .description('a per-user credential daemon for MCP servers')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      outputError: (text, write) => write(`keyward: INVALID_REQUEST: ${text.replace(/^error: /, '')}`),
    })
    .exitOverride();
  const context = () => createContext();
  registerDaemon(program);
  registerInit(program, context);
  registerAdd(program, context);
  registerLogin(program, context);
  registerToken(program, context);
  registerStatus(program, context);
  registerRemove(program, context);
  registerUnlock(program, context);
  registerService(program, context);
  registerDoctor(program, context);
  registerClient(program, context);
  registerPolicy(program, context);
  registerAudit(program, context);
  registerRotateKey(program, context);
  registerExec(program, context);
  registerConnect(program, context);
  registerProxy(program, context);
  // Commands inherit the program's error handling and output.
  for (const command of program.commands) {
    command.exitOverride();
    command.configureOutput({
      outputError: (text, write) => write(`keyward: INVALID_REQUEST: ${text.replace(/^error: /, '')}`),
    });
  }
  return program;
}

/** Runs the CLI with `argv` and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return EXIT.OK;
      }
      return EXIT.USAGE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`keyward: ${err.code}: ${inertText(err.message)}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`keyward: INTERNAL: ${inertText(message)}\n`);
    return EXIT.ERROR;
  }
}

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
