/**
 * Terminal input and output for the CLI. Messages go to stderr, data to stdout. Secrets come from
 * stdin when it is not a TTY, else from a prompt that does not echo; never from argv.
 */
import type { Readable, Writable } from 'node:stream';
import { inertText } from '../inert-text.js';
import { CliError } from './cli-error.js';

/** The streams a command uses; tests pass their own. */
export interface Io {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
}

/** The process's own streams. */
export function processIo(): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function promptHidden(io: Io, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const { stdin } = io;
    io.stderr.write(prompt);
    let value = '';
    stdin.setRawMode?.(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (error?: Error): void => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.off('data', onData);
      io.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          return;
        }
        if (ch === '\u0003') {
          finish(new CliError('INVALID_REQUEST', 'cancelled', 130));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * Reads a secret: all of stdin (one trailing `\n` or `\r\n` removed) when stdin is not a TTY,
 * else a no-echo prompt. An empty secret is refused.
 */
export async function readSecretInput(io: Io, prompt: string, what = 'secret'): Promise<string> {
  let value: string;
  if (io.stdin.isTTY) {
    value = await promptHidden(io, prompt);
  } else {
    const bytes = await readAll(io.stdin);
    value = bytes.toString('utf8');
    bytes.fill(0);
    if (value.endsWith('\r\n')) value = value.slice(0, -2);
    else if (value.endsWith('\n')) value = value.slice(0, -1);
  }
  if (value === '') {
    throw new CliError(
      'INVALID_REQUEST',
      `the ${what} is empty: pipe it on stdin (printf %s "$KEY" | keyward ...) or type it at the prompt`,
    );
  }
  return value;
}

/** Asks a question on a terminal and reads one typed line (echoed); the caller checks `isTTY` first. */
export function readLine(io: Io, prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const { stdin } = io;
    io.stderr.write(prompt);
    let value = '';
    stdin.setEncoding('utf8');
    const onData = (chunk: string): void => {
      value += chunk;
      // A line ends at Enter, or at Ctrl-D (EOT) typed on an empty line.
      const chars = [...value];
      const end = chars.findIndex((ch) => ch === '\r' || ch === '\n' || ch === '\u0004');
      if (end === -1) return;
      stdin.off('data', onData);
      stdin.pause();
      resolve(chars.slice(0, end).join(''));
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

/**
 * Writes one line of data to stdout. Control characters but newline are escaped on the way out, so
 * whatever a caller chose (a peer's executable, a scope) cannot drive the terminal; JSON stays
 * valid and reads back the same (`\uXXXX` is a JSON escape).
 */
export function printData(io: Io, line: string): void {
  io.stdout.write(`${inertText(line)}\n`);
}

/** Writes one message line to stderr, control characters escaped like `printData`. */
export function say(io: Io, line: string): void {
  io.stderr.write(`${inertText(line)}\n`);
}

/** Formats a time relative to now: "in 4m", "2h ago". */
export function relativeTime(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '-';
  const delta = Math.round((at - now) / 1000);
  const abs = Math.abs(delta);
  const unit =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.floor(abs / 60)}m`
        : abs < 86400
          ? `${Math.floor(abs / 3600)}h`
          : `${Math.floor(abs / 86400)}d`;
  return delta >= 0 ? `in ${unit}` : `${unit} ago`;
}
