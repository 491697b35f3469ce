/**
 * Running `systemctl` and `launchctl`: found on a given PATH and run with a given environment, so
 * tests can put a recording stub first on PATH and a missing tool is a normal answer, not a crash.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** What a finished command printed and how it exited. */
export interface ExecResult {
  /** The exit status; 127 when it could not be started, 124 when it timed out. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Finds and runs service-manager tools. */
export interface CommandRunner {
  /** Returns the absolute path of `name` on PATH, or undefined when it is not there. */
  which(name: string): string | undefined;
  /** Runs `file` with `args`; resolves with any exit status, never rejects. */
  run(file: string, args: readonly string[]): Promise<ExecResult>;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Creates a runner that searches `env.PATH` and gives each command `env`. */
export function createCommandRunner(env: NodeJS.ProcessEnv = process.env, timeoutMs = 15_000): CommandRunner {
  return {
    which(name) {
      for (const dir of (env.PATH ?? '').split(path.delimiter)) {
        // An empty PATH entry means the current directory: never run a tool from there.
        if (dir === '' || !path.isAbsolute(dir)) continue;
        const candidate = path.join(dir, name);
        if (isExecutableFile(candidate)) return candidate;
      }
      return undefined;
    },
    run(file, args) {
      return new Promise((resolve) => {
        execFile(file, [...args], { env, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
          if (!error) {
            resolve({ code: 0, stdout, stderr });
            return;
          }
          const failure = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
          if (typeof failure.code === 'number') resolve({ code: failure.code, stdout, stderr });
          else if (failure.killed)
            resolve({ code: 124, stdout, stderr: `${stderr}timed out after ${timeoutMs} ms` });
          else resolve({ code: 127, stdout, stderr: `${stderr}${failure.message}` });
        });
      });
    },
  };
}

/** Formats a command line for a message: what the user would type. */
export function commandLine(argv: readonly string[]): string {
  return argv
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`))
    .join(' ');
}
