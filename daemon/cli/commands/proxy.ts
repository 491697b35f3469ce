/**
 * `keyward proxy <name> [--url URL] [--header "Name: value" ...] [--no-browser]`: a stdio MCP
 * server that bridges every message to the credential's remote MCP server, with tokens from the
 * daemon (what `npx mcp-remote <url>` does, without tokens on disk or a second refresher). The
 * work is in daemon/proxy/, imported only when this command runs: it loads the MCP SDK, which no
 * other command needs.
 */
import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { type CliContext, requireName } from '../context.js';

/** RFC 9110 field-name (token characters). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers the proxy sets itself, or that would put a secret in argv. */
const RESERVED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'content-type',
  'content-length',
  'accept',
  'host',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
]);

/** Parses `--header "Name: value"` flags into a header record; refuses what must not come from argv. */
export function parseHeaders(values: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const raw of values) {
    const colon = raw.indexOf(':');
    const name = colon > 0 ? raw.slice(0, colon).trim() : '';
    const value = colon > 0 ? raw.slice(colon + 1).trim() : '';
    if (!HEADER_NAME.test(name) || /[\r\n\0]/.test(value)) {
      throw new CliError('INVALID_REQUEST', `--header takes "Name: value", not "${raw.slice(0, 40)}"`);
    }
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new CliError(
        'INVALID_REQUEST',
        `--header ${name} is not allowed: ${
          name.toLowerCase() === 'authorization'
            ? 'keyward sets Authorization from the credential (store a key with: keyward add <name> --api-key, which reads it from stdin)'
            : 'the proxy sets it, or it would put a secret in the command line'
        }`,
      );
    }
    headers[name] = value;
  }
  return headers;
}

/** Registers the command. */
export function registerProxy(program: Command, context: () => CliContext): void {
  program
    .command('proxy')
    .description('run a stdio MCP server that bridges to the remote MCP server of a credential')
    .argument('<name>', 'the credential (added with: keyward connect <name> --remote <url>)')
    .option('--url <url>', 'the remote MCP server (default: the URL the credential was added for)')
    .option(
      '--header <header>',
      'an extra header for every request, "Name: value" (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--no-browser', 'show the login URL on stderr without opening a browser')
    .action(async (name: string, opts: { url?: string; header?: string[]; browser: boolean }) => {
      const input = {
        name: requireName(name),
        headers: parseHeaders(opts.header ?? []),
        browser: opts.browser,
        ...(opts.url !== undefined ? { url: opts.url } : {}),
      };
      const { runProxy } = await import('../../proxy/run.js');
      process.exitCode = await runProxy(input, context());
    });
}
