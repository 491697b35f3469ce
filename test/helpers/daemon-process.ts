/**
 * Starts the real keyward daemon as a child process (the built CLI, `keyward daemon`) in a temp
 * KEYWARD_HOME with its own socket, and runs CLI commands against it. Integration tests use
 * nothing else to reach keyward: the same surfaces a user has.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/helpers → up three). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The built CLI entry, as `package.json` `bin.keyward` names it. */
export const CLI = path.join(REPO_ROOT, 'dist', 'daemon', 'cli', 'main.js');

/** A temp KEYWARD_HOME and the environment that points keyward at it. */
export interface TestHome {
  home: string;
  socket: string;
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/** Creates a private temp home; the socket lives in `<home>/run/`. */
export function makeHome(extraEnv: NodeJS.ProcessEnv = {}): TestHome {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-'));
  fs.chmodSync(base, 0o700);
  const home = path.join(base, 'home');
  const socket = path.join(base, 'run', 'keyward.sock');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KEYWARD_HOME: home,
    KEYWARD_SOCKET: socket,
    KEYWARD_LOG_LEVEL: 'debug',
    // Test-only switches (KEYWARD_TEST_*) count only with KEYWARD_TESTING=1 (daemon/test-overrides.ts).
    KEYWARD_TESTING: '1',
    KEYWARD_TEST_FAST_KDF: '1',
    ...extraEnv,
  };
  delete env.KEYWARD_CLIENT_TOKEN;
  return { home, socket, env, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

/** A daemon child process and what it printed. */
export interface DaemonProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Sends one HTTP request over the socket and returns status and parsed body. */
export function socketRequest(
  socket: string,
  method: string,
  route: string,
  options: { body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const payload =
      options.raw !== undefined
        ? Buffer.from(options.raw)
        : options.body === undefined
          ? undefined
          : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { ...options.headers };
    if (payload && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const req = http.request({ socketPath: socket, method, path: route, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Waits until the daemon answers `GET /v1/health`. */
export async function waitForHealth(socket: string, timeoutMs = 15_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null)
      throw new Error(`daemon exited with ${child.exitCode} before answering`);
    try {
      const res = await socketRequest(socket, 'GET', '/v1/health');
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`daemon did not answer on ${socket} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Spawns `keyward daemon` and waits until it serves. */
export async function startDaemon(
  home: TestHome,
  options: { wait?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [CLI, 'daemon'], {
    env: { ...home.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Whatever happens to the test (a failed assertion, a crash), never leave a daemon behind.
  const reap = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const proc: DaemonProcess = {
    child,
    output: () => out,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (options.wait !== false) {
    try {
      await waitForHealth(home.socket, 15_000, child);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- daemon output ---\n${out}`);
    }
  }
  return proc;
}

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with `args`, feeding `input` on stdin (stdin is a pipe, never a TTY). */
export function runCli(
  home: TestHome,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...home.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyward ${args.join(' ')} timed out\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Collects every file under a directory, recursively. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** Returns the files under `dir` whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle);
  return listFiles(dir).filter((file) => fs.readFileSync(file).includes(bytes));
}
