/** Times whole processes: spawn to exit, as a shell script calling the command would see it. */
import { spawn } from 'node:child_process';

/** What one timed run printed and how long it took. */
export interface TimedRun {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` once with `env` and measures the wall time until it exits. */
export function timeProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr });
    });
  });
}

/** Runs a command `runs` times in a row (after `warmup` untimed runs); throws when one fails. */
export async function timeRepeatedly(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  runs: number,
  warmup: number,
  check: (run: TimedRun) => boolean,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i += 1) {
    const run = await timeProcess(command, args, env);
    if (!check(run)) {
      throw new Error(`${command} ${args.join(' ')} failed (exit ${run.code}): ${run.stderr.slice(0, 300)}`);
    }
    if (i >= warmup) times.push(run.ms);
  }
  return times;
}
