/**
 * Installing, removing and inspecting keyward's user service. The file work is shared; what to
 * ask the service manager (`systemctl --user`, `launchctl`) is per target. A missing or failing
 * manager is reported, never hidden: the report lists what ran and what the user still has to run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner, ExecResult } from './command-runner.js';
import type { ServiceFile, ServiceSetup, ServiceTarget } from './service-files.js';

/** How an install changed one file. */
export type FileChange = 'created' | 'updated' | 'unchanged';

/** A service-manager command that ran, and how it ended. */
export interface StepResult {
  argv: string[];
  code: number;
  /** What it printed on stderr (or stdout when stderr was empty), trimmed. */
  output: string;
}

/** What `install` or `uninstall` did. */
export interface ServiceReport {
  target: ServiceTarget;
  /** Files written (install) or removed (uninstall). */
  files: { path: string; change: FileChange | 'removed' | 'absent' }[];
  /** The manager tool's path, or undefined when it is not on PATH. */
  manager: string | undefined;
  /** Commands that ran, in order. */
  ran: StepResult[];
  /** The first command that failed, if any. */
  failed: StepResult | undefined;
  /** Commands the user still has to run (the manager is missing, or a step failed). */
  pending: string[][];
}

/** One file's state on disk compared with what install would write now. */
export interface FileStatus {
  path: string;
  present: boolean;
  /** Same bytes as a fresh install would write (false when absent). */
  current: boolean;
}

/** What `status` found. */
export interface ServiceStatus {
  target: ServiceTarget;
  /** Every file is present. */
  installed: boolean;
  /** Every file is present and matches what install would write now (node and CLI paths). */
  current: boolean;
  files: FileStatus[];
  /** The manager tool's path, or null when it is not on PATH. */
  manager: string | null;
  /** Enabled to start at login; null when the manager could not be asked. */
  enabled: boolean | null;
  /** The daemon process is running under the manager; null when unknown. */
  running: boolean | null;
  /** systemd only: the socket unit is listening (the daemon starts on the first connection). */
  listening?: boolean | null;
  /** Why a manager answer is null, when it failed. */
  detail?: string;
}

/** A target's operations. */
export interface ServiceManager {
  readonly target: ServiceTarget;
  /** The name of the tool the target drives (`systemctl`, `launchctl`). */
  readonly tool: string;
  /** The files install writes. */
  files(): ServiceFile[];
  /** The commands install runs after writing the files, for `--dry-run` and messages. */
  enableCommands(): string[][];
  install(): Promise<ServiceReport>;
  uninstall(): Promise<ServiceReport>;
  status(): Promise<ServiceStatus>;
}

/** What every target's implementation gets. */
export interface ManagerDeps {
  setup: ServiceSetup;
  runner: CommandRunner;
}

/** Writes one service file atomically (temp file + rename) with mode 0644: units hold no secret. */
export function writeServiceFile(file: ServiceFile): FileChange {
  let previous: string | undefined;
  try {
    previous = fs.readFileSync(file.path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (previous === file.content) return 'unchanged';
  const dir = path.dirname(file.path);
  fs.mkdirSync(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(file.path)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(temp, file.content, { mode: 0o644, flag: 'wx' });
    fs.chmodSync(temp, 0o644);
    fs.renameSync(temp, file.path);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
  return previous === undefined ? 'created' : 'updated';
}

/** Removes one file; tells whether it was there. */
export function removeServiceFile(file: string): boolean {
  try {
    fs.unlinkSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Compares the files on disk with what install would write. */
export function fileStatuses(files: ServiceFile[]): FileStatus[] {
  return files.map((file) => {
    let onDisk: string | undefined;
    try {
      onDisk = fs.readFileSync(file.path, 'utf8');
    } catch {
      onDisk = undefined;
    }
    return { path: file.path, present: onDisk !== undefined, current: onDisk === file.content };
  });
}

/** Summarises a command's outcome for a report. */
export function stepResult(argv: string[], result: ExecResult): StepResult {
  const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(0, 5).join('\n');
  return { argv, code: result.code, output };
}

/**
 * Runs `steps` in order through the manager tool at `tool`, stopping at the first failure unless
 * `keepGoing`; every step not run (or failed) is returned as pending.
 */
export async function runSteps(
  runner: CommandRunner,
  tool: string,
  steps: string[][],
  opts: { keepGoing?: boolean } = {},
): Promise<Pick<ServiceReport, 'ran' | 'failed' | 'pending'>> {
  const ran: StepResult[] = [];
  const pending: string[][] = [];
  let failed: StepResult | undefined;
  for (const argv of steps) {
    if (failed && !opts.keepGoing) {
      pending.push(argv);
      continue;
    }
    const [, ...args] = argv;
    const result = stepResult(argv, await runner.run(tool, args));
    ran.push(result);
    if (result.code !== 0) {
      failed ??= result;
      pending.push(argv);
    }
  }
  return { ran, failed, pending };
}
