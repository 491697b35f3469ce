/**
 * `keyward proxy <name>` once the command line is parsed: find the credential and its server,
 * make sure it can serve a token (logging in first when it needs one), then bridge stdio to the
 * server until stdin ends. Loaded lazily by the command, so that only `proxy` loads the MCP SDK.
 */
import { KeywardError } from '../../client/errors.js';
import { KeywardClient } from '../../client/index.js';
import type { CredentialStatus, StatusResponse } from '../../shared/protocol.js';
import { tryReadAdminToken } from '../admin-token.js';
import { CliError } from '../cli/cli-error.js';
import type { CliContext } from '../cli/context.js';
import { say } from '../cli/io.js';
import { Bridge } from './bridge.js';
import { LoginFlow } from './login-flow.js';
import { remoteFetch } from './remote-fetch.js';

/** Parsed input of `keyward proxy`. */
export interface ProxyInput {
  name: string;
  url?: string;
  headers: Record<string, string>;
  browser: boolean;
}

/** Failures at start that may clear while the proxy runs. */
const TRANSIENT = new Set(['VAULT_LOCKED', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_ERROR']);

function cliError(err: unknown): unknown {
  return err instanceof KeywardError ? new CliError(err.code, err.message) : err;
}

/** Returns the credential's status entry: NOT_FOUND (exit 4) when there is none. */
async function findCredential(ctx: CliContext, name: string): Promise<CredentialStatus> {
  const status = await ctx.call<StatusResponse>('GET', '/status');
  const entry = status.credentials.find((c) => c.name === name);
  if (entry === undefined) {
    throw new CliError(
      'NOT_FOUND',
      `no credential named "${name}": add one with: keyward connect ${name} --remote <url> (or list them: keyward status)`,
    );
  }
  return entry;
}

/** Picks the server URL: `--url`, else the one the credential was added for. */
function serverUrl(input: ProxyInput, entry: CredentialStatus): URL {
  const raw = input.url ?? entry.mcp_server;
  if (raw === undefined) {
    throw new CliError(
      'INVALID_REQUEST',
      `credential "${input.name}" was not added for a remote MCP server: give its URL with --url <url>`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError('INVALID_REQUEST', `"${raw}" is not a URL`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new CliError(
      'INVALID_REQUEST',
      `keyward sends tokens over https only (or http to this machine): ${url.origin} is neither`,
    );
  }
  return url;
}

/** Runs the proxy; resolves with the exit code once stdin has ended. */
export async function runProxy(input: ProxyInput, ctx: CliContext): Promise<number> {
  const entry = await findCredential(ctx, input.name);
  const url = serverUrl(input, entry);
  // The proxy is keyward's own CLI, run by the user: it asks for tokens as the CLI does (admin
  // token), unless the host gave it a client token, so that the audit log names that client.
  const envToken = process.env.KEYWARD_CLIENT_TOKEN;
  const bearer = envToken !== undefined && envToken !== '' ? envToken : tryReadAdminToken(ctx.paths);
  const client = new KeywardClient({
    socketPath: ctx.paths.socket,
    ...(bearer !== undefined ? { clientToken: bearer } : {}),
  });
  const flow = new LoginFlow({ credential: input.name, grant: entry.grant, browser: input.browser, ctx });

  // Serve only once a token can be had: a host's first request should not wait on a login.
  try {
    await client.getToken(input.name);
  } catch (err) {
    if (!(err instanceof KeywardError)) throw err;
    if (err.code === 'LOGIN_REQUIRED') {
      await flow.login();
    } else if (TRANSIENT.has(err.code)) {
      // Serve anyway: requests get error answers that say why until it clears (an unlock, the
      // authorization server coming back), and the host need not be restarted.
      say(ctx.io, `keyward: ${err.code}: ${err.message} (serving; requests fail until this clears)`);
    } else {
      throw cliError(err);
    }
  }

  const bridge = new Bridge({
    url,
    headers: input.headers,
    fetch: remoteFetch({ credential: input.name, client, origin: url.origin, login: (s) => flow.login(s) }),
    stdin: ctx.io.stdin,
    stdout: ctx.io.stdout,
    log: (line) => say(ctx.io, line),
  });
  const stop = () => void bridge.close();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await bridge.run();
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  return 0;
}
