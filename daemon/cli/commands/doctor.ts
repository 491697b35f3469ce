/**
 * `keyward doctor [--json]`: checks the daemon, keyward's files and modes, the vault's key store,
 * the service, the clock, the credentials and the policy; one line each, with a fix for every
 * problem. Exits 0 when every check passes (warnings pass), 1 otherwise.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../shared/errors.js';
import { systemClock } from '../../doctor/clock-check.js';
import type { DoctorDeps } from '../../doctor/doctor.js';
import { createCommandRunner } from '../../service/command-runner.js';
import { currentServiceSetup, defaultServiceTarget } from '../../service/service-files.js';
import { serviceManagerFor } from '../../service/service-targets.js';
import type { CliContext } from '../context.js';
import { printData } from '../io.js';

/** How long doctor waits for each daemon answer. */
const DAEMON_TIMEOUT_MS = 5_000;

/** Builds doctor's dependencies from this process. */
export function processDoctorDeps(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): DoctorDeps {
  const setup = currentServiceSetup(ctx.paths, env);
  const target = defaultServiceTarget(setup.platform);
  return {
    paths: ctx.paths,
    uid: setup.uid >= 0 ? setup.uid : undefined,
    service: target ? serviceManagerFor(target, setup, createCommandRunner(env)) : undefined,
    clock: systemClock,
    timeoutMs: DAEMON_TIMEOUT_MS,
  };
}

/** Runs the checks and prints them; returns 0 when all pass, 1 otherwise. */
export async function runDoctor(
  opts: { json?: boolean },
  ctx: CliContext,
  deps: DoctorDeps = processDoctorDeps(ctx),
): Promise<number> {
  // Loaded on use: the checks read the vault, and other commands need neither SQLite nor sodium.
  const { formatCheck, runDoctorChecks } = await import('../../doctor/doctor.js');
  const report = await runDoctorChecks(deps);
  if (opts.json) printData(ctx.io, JSON.stringify(report, null, 2));
  else for (const check of report.checks) printData(ctx.io, formatCheck(check));
  return report.ok ? EXIT.OK : EXIT.ERROR;
}

/** Registers the command. */
export function registerDoctor(program: Command, context: () => CliContext): void {
  program
    .command('doctor')
    .description('check the daemon, files and modes, key store, service, clock, credentials and policy')
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await runDoctor(opts, context());
    });
}
