/**
 * `keyward service install [--dry-run] [--target systemd|launchd]`, `service uninstall`,
 * `service status [--json]`: keyward as a user service that starts at login (or on the first
 * connection, with systemd socket activation) and restarts after a crash.
 */
import { type Command, Option } from 'commander';
import { EXIT } from '../../../shared/errors.js';
import { type CommandRunner, commandLine, createCommandRunner } from '../../service/command-runner.js';
import {
  currentServiceSetup,
  defaultServiceTarget,
  LAUNCHD_LABEL,
  launchdLogFile,
  SERVICE_TARGETS,
  type ServiceSetup,
  type ServiceTarget,
} from '../../service/service-files.js';
import type { ServiceReport, ServiceStatus } from '../../service/service-manager.js';
import { serviceManagerFor } from '../../service/service-targets.js';
import { TemplateError } from '../../service/template.js';
import { CliError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { printData, say } from '../io.js';

/** What the service commands depend on beyond the CLI context; tests inject their own. */
export interface ServiceDeps {
  setup: ServiceSetup;
  runner: CommandRunner;
}

/** The options the service subcommands take. */
export interface ServiceInput {
  target?: ServiceTarget;
  dryRun?: boolean;
  json?: boolean;
}

/** Builds the dependencies from this process. */
export function processServiceDeps(ctx: CliContext, env: NodeJS.ProcessEnv = process.env): ServiceDeps {
  return { setup: currentServiceSetup(ctx.paths, env), runner: createCommandRunner(env) };
}

/** Resolves `--target`, defaulting to the platform's service manager. */
export function resolveTarget(input: ServiceInput, platform: NodeJS.Platform): ServiceTarget {
  const target = input.target ?? defaultServiceTarget(platform);
  if (!target) {
    throw new CliError(
      'INVALID_REQUEST',
      `keyward has no service manager support on ${platform}: start it from your session's startup with: keyward daemon`,
      EXIT.ERROR,
    );
  }
  return target;
}

function managerFor(input: ServiceInput, deps: ServiceDeps) {
  return serviceManagerFor(resolveTarget(input, deps.setup.platform), deps.setup, deps.runner);
}

function renderFiles(input: ServiceInput, deps: ServiceDeps) {
  const manager = managerFor(input, deps);
  try {
    return { manager, files: manager.files() };
  } catch (err) {
    if (err instanceof TemplateError) throw new CliError('INVALID_REQUEST', err.message, EXIT.ERROR);
    throw err;
  }
}

function whatRuns(target: ServiceTarget, deps: ServiceDeps): string {
  if (target === 'systemd') {
    return (
      `keyward runs as a systemd user service: systemd listens on ${deps.setup.paths.socket} and starts ` +
      'the daemon on the first connection; logs: journalctl --user -u keyward'
    );
  }
  return `keyward runs as a LaunchAgent (${LAUNCHD_LABEL}), started now and at every login; logs: ${launchdLogFile(deps.setup)}`;
}

async function passphraseHint(ctx: CliContext): Promise<string | undefined> {
  // Loaded on use: the CLI's other commands need neither SQLite nor sodium.
  const { Vault } = await import('../../vault/vault.js');
  try {
    if (!Vault.exists(ctx.paths) || Vault.readMetadata(ctx.paths).keyStore !== 'passphrase') return undefined;
  } catch {
    return undefined;
  }
  return (
    'the vault is passphrase-protected: after each start of the service run: keyward unlock ' +
    '(or give the service the passphrase as a systemd credential or KEYWARD_PASSPHRASE_FILE: see docs/service.md)'
  );
}

function reportSteps(ctx: CliContext, report: ServiceReport, tool: string): void {
  for (const step of report.ran) {
    if (step.code === 0) say(ctx.io, `ran: ${commandLine(step.argv)}`);
    else
      say(
        ctx.io,
        `keyward: ${commandLine(step.argv)} failed (exit ${step.code})${step.output ? `: ${step.output}` : ''}`,
      );
  }
  if (report.pending.length === 0) return;
  const why = report.manager
    ? `${tool} did not finish the job`
    : `${tool} is not on PATH, so nothing was ${report.files.some((f) => f.change === 'removed') ? 'stopped' : 'enabled'}`;
  say(ctx.io, `${why}; once it can, run:`);
  for (const argv of report.pending) say(ctx.io, `  ${commandLine(argv)}`);
}

/** Writes and enables the user service, or with `--dry-run` prints what it would write. */
export async function runServiceInstall(
  input: ServiceInput,
  ctx: CliContext,
  deps: ServiceDeps = processServiceDeps(ctx),
): Promise<number> {
  const { manager, files } = renderFiles(input, deps);
  if (input.dryRun) {
    for (const file of files) {
      printData(ctx.io, `# ${file.path}`);
      ctx.io.stdout.write(file.content.endsWith('\n') ? file.content : `${file.content}\n`);
    }
    say(
      ctx.io,
      `dry run: nothing was written; install would write ${files.length === 1 ? 'this file' : `these ${files.length} files`} ` +
        `and run: ${manager.enableCommands().map(commandLine).join('; ')}`,
    );
    return EXIT.OK;
  }
  if (/[\\/]_npx[\\/]/.test(deps.setup.cliPath)) {
    // npx runs packages from a cache that npm prunes; a service pointing there breaks one day.
    say(
      ctx.io,
      `warning: keyward runs from npx's cache (${deps.setup.cliPath}), which npm may clean: ` +
        'install it (npm install -g keyward) and run keyward service install from that install',
    );
  }
  const report = await manager.install();
  for (const file of report.files) {
    say(
      ctx.io,
      `${file.change === 'unchanged' ? 'unchanged' : file.change === 'updated' ? 'updated' : 'wrote'} ${file.path}`,
    );
  }
  reportSteps(ctx, report, manager.tool);
  if (report.failed) {
    say(ctx.io, 'undo: keyward service uninstall');
    return EXIT.ERROR;
  }
  if (report.manager) say(ctx.io, whatRuns(manager.target, deps));
  const hint = await passphraseHint(ctx);
  if (hint) say(ctx.io, hint);
  say(ctx.io, 'undo: keyward service uninstall');
  return EXIT.OK;
}

/** Stops and disables the user service and removes its files. */
export async function runServiceUninstall(
  input: ServiceInput,
  ctx: CliContext,
  deps: ServiceDeps = processServiceDeps(ctx),
): Promise<number> {
  const manager = managerFor(input, deps);
  const report = await manager.uninstall();
  const removed = report.files.filter((f) => f.change === 'removed');
  if (removed.length === 0 && report.ran.length === 0) {
    say(
      ctx.io,
      `keyward is not installed as a ${manager.target} service: nothing to remove (${report.files.map((f) => f.path).join(', ')})`,
    );
    return EXIT.OK;
  }
  for (const file of removed) say(ctx.io, `removed ${file.path}`);
  reportSteps(ctx, report, manager.tool);
  if (report.failed) return EXIT.ERROR;
  say(
    ctx.io,
    `keyward's ${manager.target} service is uninstalled; the vault and its credentials are untouched; reinstall with: keyward service install`,
  );
  return EXIT.OK;
}

function yesNo(value: boolean | null, unknown: string): string {
  return value === null ? `unknown (${unknown})` : value ? 'yes' : 'no';
}

/** Renders the status as lines for a person. */
export function describeServiceStatus(status: ServiceStatus, socket: string): string[] {
  const why = status.detail ?? 'the service manager did not say';
  const lines = [`target:    ${status.target}${status.manager ? ` (${status.manager})` : ''}`];
  if (!status.installed) lines.push('installed: no (run: keyward service install)');
  else if (!status.current)
    lines.push(
      'installed: yes, but outdated: node, keyward, KEYWARD_HOME or KEYWARD_SOCKET changed since (run: keyward service install)',
    );
  else lines.push('installed: yes');
  for (const file of status.files) lines.push(`  ${file.present ? '' : '(missing) '}${file.path}`);
  lines.push(`enabled:   ${yesNo(status.enabled, why)}`);
  if (status.listening !== undefined)
    lines.push(`listening: ${yesNo(status.listening, why)}${status.listening ? ` on ${socket}` : ''}`);
  const idle =
    status.running === false && status.listening === true ? ' (starts on the first connection)' : '';
  lines.push(`running:   ${yesNo(status.running, why)}${idle}`);
  return lines;
}

/** Reports whether the service is installed, enabled and running. */
export async function runServiceStatus(
  input: ServiceInput,
  ctx: CliContext,
  deps: ServiceDeps = processServiceDeps(ctx),
): Promise<number> {
  const status = await renderFiles(input, deps).manager.status();
  if (input.json) printData(ctx.io, JSON.stringify(status, null, 2));
  else for (const line of describeServiceStatus(status, ctx.paths.socket)) printData(ctx.io, line);
  return EXIT.OK;
}

function targetOption(): Option {
  return new Option('--target <target>', "systemd or launchd (default: this platform's)").choices(
    SERVICE_TARGETS,
  );
}

/** Registers `service` and its subcommands. */
export function registerService(program: Command, context: () => CliContext): void {
  const service = program
    .command('service')
    .description('run keyward as a user service (systemd or launchd)');
  service
    .command('install')
    .description('write and enable the user service (systemd socket activation, or a LaunchAgent)')
    .option('--dry-run', 'print each file it would write (# <path>, then the content) and write nothing')
    .addOption(targetOption())
    .action(async (opts: ServiceInput) => {
      process.exitCode = await runServiceInstall(opts, context());
    });
  service
    .command('uninstall')
    .description('stop and disable the user service and remove its files (the vault is kept)')
    .addOption(targetOption())
    .action(async (opts: ServiceInput) => {
      process.exitCode = await runServiceUninstall(opts, context());
    });
  service
    .command('status')
    .description('show whether the service is installed, enabled and running')
    .addOption(targetOption())
    .option('--json', 'print the status as JSON')
    .action(async (opts: ServiceInput) => {
      process.exitCode = await runServiceStatus(opts, context());
    });
  // Subcommands share the program's error format and exit codes.
  for (const command of [service, ...service.commands]) {
    command.exitOverride();
    command.configureOutput({
      outputError: (text, write) => write(`keyward: INVALID_REQUEST: ${text.replace(/^error: /, '')}`),
    });
  }
}
