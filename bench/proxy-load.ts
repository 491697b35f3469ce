/**
 * One side of the mcp-remote comparison: N MCP host processes, each running a stdio proxy for
 * the same remote MCP server (`keyward proxy <name>`, or `mcp-remote <url>` as hosts configure it
 * today), calling a tool across token expiries. The server is the MCP SDK's `McpServer` behind
 * oidc-provider with refresh-token rotation and reuse detection and short access tokens
 * (test/fixtures/oidc-server.ts, mcp-remote-server.ts), all on loopback in this process; each
 * host is the MCP SDK's `Client` on a `StdioClientTransport`, as an MCP host runs a server.
 *
 * What is measured for one tool:
 * - refreshes: `grant.success` events of grant type `refresh_token` during the load, per expiry;
 * - errors: `grant.error` events during the load, and tool calls that failed;
 * - tokens in clear: every access and refresh token the server issued, looked for byte by byte
 *   in every file the tool keeps (KEYWARD_HOME, or MCP_REMOTE_CONFIG_DIR) and on the hosts' stderr;
 * - removal: after `keyward remove` (or deleting mcp-remote's directory, which is all a user of
 *   it can do), whether the newest refresh token is still accepted by the server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type McpRemoteServer, startMcpRemoteServer } from '../test/fixtures/mcp-remote-server.js';
import { type OidcServer, startOidcServer } from '../test/fixtures/oidc-server.js';
import {
  CLI,
  type DaemonProcess,
  listFiles,
  makeHome,
  REPO_ROOT,
  runCli,
  startDaemon,
  type TestHome,
} from '../test/helpers/daemon-process.js';
import { loginHeadless } from '../test/helpers/oauth-cli.js';

/** The stdio proxies compared. */
export type ProxyTool = 'keyward' | 'mcp-remote';

/** The load. */
export interface LoadOptions {
  /** Host processes, each with its own proxy (default 3). */
  hosts?: number;
  /** Access-token expiries the load spans (default 2). */
  expiries?: number;
  /** Access-token lifetime at the server, in seconds (default 5). */
  ttlSeconds?: number;
  /** Pause between one host's calls, in ms (default 250). */
  intervalMs?: number;
}

/** What one tool came to. */
export interface LoadResult {
  tool: ProxyTool;
  hosts: number;
  ttlSeconds: number;
  /** Access-token lifetimes the load was planned for (calls start only within them). */
  expiries: number;
  /** How long the load took, in seconds (a call that hangs runs past the plan). */
  loadSeconds: number;
  calls: number;
  failedCalls: number;
  /** Distinct failure messages (first 160 characters). */
  failures: string[];
  /** Refresh grants at the server within the planned lifetimes. */
  refreshes: number;
  refreshesPerExpiry: number;
  /** `grant.error` events during the load, as `error: detail`. */
  grantErrors: string[];
  /** Logins the proxies asked the user for during the load (the grant was lost). */
  loginPrompts: number;
  /** How many of the issued tokens (access and refresh) were found in clear in a file. */
  tokensInClearOnDisk: number;
  /** Those files, relative to the tool's directory. */
  filesWithTokens: string[];
  /** How many issued tokens appeared on the hosts' stderr. */
  tokensOnStderr: number;
  /** What removing the tool's credentials was. */
  removal: string;
  /** Whether the newest refresh token was refused by the server after removal. */
  removalRevokes: boolean;
  /** The server's answer to that refresh token. */
  afterRemoval: string;
}

const MCP_REMOTE = path.join(REPO_ROOT, 'node_modules', 'mcp-remote', 'dist', 'proxy.js');
const CREDENTIAL = 'remote';
/** mcp-remote prints this line, then the URL on the next one. */
const MCP_REMOTE_PROMPT = /Please authorize this client by visiting:\s*\n\s*(\S+)\n/;

/** What either proxy prints on stderr when it needs the user to log in. */
const LOGIN_PROMPT = /Please authorize this client by visiting:|open this URL to log in|enter the code/g;

/** A running host: an MCP client whose server is one proxy process. */
interface Host {
  client: Client;
  stderr(): string;
}

/** Where a tool keeps its state, how to start its proxy, and how to remove it. */
interface Side {
  /** The directory whose files are scanned for tokens. */
  dir: string;
  command: { command: string; args: string[]; env: Record<string, string> };
  /** Logs in, then starts the first host (mcp-remote logs in from its first host). */
  loginAndFirstHost(): Promise<Host>;
  /** Removes the credential as its user would; returns a description. */
  remove(): Promise<string>;
  close(): Promise<void>;
}

/** Starts a host whose MCP server is `command`; `onStderr` sees the proxy's stderr as it comes. */
async function startHost(
  command: Side['command'],
  name: string,
  onStderr: (all: string) => void = () => {},
): Promise<Host> {
  const transport = new StdioClientTransport({ ...command, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr(stderr);
  });
  const client = new Client({ name, version: '1.0.0' });
  try {
    await client.connect(transport, { timeout: 120_000 });
  } catch (err) {
    throw new Error(
      `${name} did not connect: ${(err as Error).message}\n--- its stderr ---\n${stderr.slice(-4000)}`,
    );
  }
  return { client, stderr: () => stderr };
}

/** Environment without anything keyward or mcp-remote might pick up from the caller's. */
function cleanEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...extra })) {
    if (value !== undefined && !key.startsWith('KEYWARD_') && key !== 'MCP_REMOTE_CONFIG_DIR')
      env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

/** keyward: a daemon in a temp home, `add --mcp-server`, a headless `login`, `keyward proxy`. */
async function keywardSide(as: OidcServer, mcp: McpRemoteServer): Promise<Side> {
  const home: TestHome = makeHome();
  let daemon: DaemonProcess | undefined;
  const env = cleanEnv({
    KEYWARD_HOME: home.env.KEYWARD_HOME,
    KEYWARD_SOCKET: home.env.KEYWARD_SOCKET,
    KEYWARD_TEST_FAST_KDF: '1',
  });
  const command = { command: process.execPath, args: [CLI, 'proxy', CREDENTIAL, '--no-browser'], env };
  return {
    dir: home.home,
    command,
    async loginAndFirstHost() {
      daemon = await startDaemon(home);
      const add = await runCli(home, ['add', CREDENTIAL, '--mcp-server', mcp.url]);
      if (add.code !== 0) throw new Error(`keyward add failed: ${add.stderr}`);
      const login = await loginHeadless(home, as, CREDENTIAL);
      if (login.code !== 0) throw new Error(`keyward login failed: ${login.stderr}`);
      return startHost(command, 'host-1');
    },
    async remove() {
      const removed = await runCli(home, ['remove', CREDENTIAL]);
      if (removed.code !== 0) throw new Error(`keyward remove failed: ${removed.stderr}`);
      return '`keyward remove`';
    },
    async close() {
      await daemon?.stop();
      home.cleanup();
    },
  };
}

/**
 * mcp-remote: its config in a temp directory; its browser is a stub that only records the URL (via
 * `BROWSER`, which the xdg-open it ships honours, and the fallbacks it tries on PATH), so no real
 * browser opens; the authorization URL it prints on stderr is walked by the fixture.
 */
async function mcpRemoteSide(as: OidcServer, mcp: McpRemoteServer): Promise<Side> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-remote-'));
  const configDir = path.join(base, 'config');
  const bin = path.join(base, 'bin');
  fs.mkdirSync(bin);
  const stub = path.join(bin, 'xdg-open');
  fs.writeFileSync(stub, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${path.join(base, 'opened')}'\nexit 0\n`, {
    mode: 0o755,
  });
  for (const name of ['gio', 'x-www-browser', 'sensible-browser', 'www-browser']) {
    fs.symlinkSync(stub, path.join(bin, name));
  }
  const env = cleanEnv({
    MCP_REMOTE_CONFIG_DIR: configDir,
    BROWSER: stub,
    PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
    DISPLAY: undefined,
    WAYLAND_DISPLAY: undefined,
  });
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const command = { command: process.execPath, args: [MCP_REMOTE, mcp.url], env };
  return {
    dir: configDir,
    command,
    async loginAndFirstHost() {
      let walked: Promise<unknown> | undefined;
      const host = await startHost(command, 'host-1', (stderr) => {
        const url = MCP_REMOTE_PROMPT.exec(stderr)?.[1];
        if (url !== undefined && walked === undefined) walked = as.completeAuthorization(url);
      });
      await walked;
      // It must have gone to the stub: anything else could have been a real browser.
      if (!fs.existsSync(path.join(base, 'opened'))) {
        await host.client.close();
        throw new Error('mcp-remote did not open its login URL with the stub browser');
      }
      return host;
    },
    async remove() {
      // mcp-remote has no command to log out; its README says to delete ~/.mcp-auth.
      fs.rmSync(configDir, { recursive: true, force: true });
      return 'delete its config directory';
    },
    async close() {
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Calls `whoami` from every host until `deadline`, each host `intervalMs` apart from its last call. */
async function load(hosts: Host[], deadline: number, intervalMs: number) {
  let calls = 0;
  const failures: string[] = [];
  await Promise.all(
    hosts.map(async (host) => {
      while (Date.now() < deadline) {
        calls += 1;
        try {
          const result = await host.client.callTool({ name: 'whoami', arguments: {} }, undefined, {
            timeout: 60_000,
          });
          if (result.isError === true) throw new Error(JSON.stringify(result.content).slice(0, 160));
        } catch (err) {
          failures.push(String((err as Error).message ?? err).slice(0, 160));
        }
        await sleep(intervalMs);
      }
    }),
  );
  return { calls, failures };
}

/** Looks for every token the server issued so far in every file under a directory. */
class DiskScan {
  /** Tokens found in clear. */
  readonly tokens = new Set<string>();
  /** Files they were found in, relative to the directory. */
  readonly files = new Set<string>();
  readonly #dir: string;
  readonly #as: OidcServer;

  constructor(dir: string, as: OidcServer) {
    this.#dir = dir;
    this.#as = as;
  }

  /** Scans once; files that vanish meanwhile are skipped. */
  run(): void {
    const issued = this.#as.events.issued.map((t) => t.value);
    let files: string[];
    try {
      files = listFiles(this.#dir);
    } catch {
      return;
    }
    for (const file of files) {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch {
        continue;
      }
      const found = issued.filter((t) => bytes.includes(Buffer.from(t)));
      if (found.length > 0) this.files.add(path.relative(this.#dir, file));
      for (const token of found) this.tokens.add(token);
    }
  }
}

/** Counts the tokens found in `text`. */
function tokensIn(text: string | Buffer, tokens: string[]): number {
  const haystack = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return tokens.filter((t) => haystack.includes(Buffer.from(t))).length;
}

/** Runs the load for one tool against a fresh server and measures it. */
export async function measure(tool: ProxyTool, options: LoadOptions = {}): Promise<LoadResult> {
  const hostCount = options.hosts ?? 3;
  const expiries = options.expiries ?? 2;
  const ttlSeconds = options.ttlSeconds ?? 5;
  const intervalMs = options.intervalMs ?? 250;

  const as = await startOidcServer({ accessTokenTtl: ttlSeconds });
  const mcp = await startMcpRemoteServer(as);
  const side = tool === 'keyward' ? await keywardSide(as, mcp) : await mcpRemoteSide(as, mcp);
  const hosts: Host[] = [];
  try {
    hosts.push(await side.loginAndFirstHost());
    for (let i = 2; i <= hostCount; i += 1) hosts.push(await startHost(side.command, `host-${i}`));

    const refreshesBefore = as.events.grantSuccess.refresh_token ?? 0;
    const errorsBefore = as.events.grantErrors.length;
    // The files are scanned during the load too: a tool may delete its tokens when it fails.
    const scan = new DiskScan(side.dir, as);
    const scanner = setInterval(() => scan.run(), 1000);
    const stderrAtStart = hosts.map((h) => h.stderr().length);
    const started = Date.now();
    const deadline = started + expiries * ttlSeconds * 1000;
    // Refreshes are counted over the planned lifetimes, so that hung calls do not dilute the rate.
    const refreshCount = () => (as.events.grantSuccess.refresh_token ?? 0) - refreshesBefore;
    let refreshes: number | undefined;
    const windowEnd = setTimeout(() => {
      refreshes = refreshCount();
    }, deadline - Date.now());
    const { calls, failures } = await load(hosts, deadline, intervalMs);
    const loadSeconds = (Date.now() - started) / 1000;
    clearInterval(scanner);
    clearTimeout(windowEnd);
    refreshes ??= refreshCount();
    const grantErrors = as.events.grantErrors.slice(errorsBefore).map((e) => `${e.error}: ${e.detail}`);

    await Promise.all(hosts.map((h) => h.client.close()));
    scan.run();
    const issued = as.events.issued.map((t) => t.value);
    const loginPrompts = hosts
      .map((h, i) => h.stderr().slice(stderrAtStart[i]).match(LOGIN_PROMPT)?.length ?? 0)
      .reduce((a, b) => a + b, 0);
    const tokensOnStderr = tokensIn(hosts.map((h) => h.stderr()).join('\n'), issued);

    const newest = as.events.issued.filter((t) => t.kind === 'refresh_token').at(-1);
    const removal = await side.remove();
    const after =
      newest === undefined ? undefined : await presentRefreshToken(as, newest.value, newest.clientId);
    return {
      tool,
      hosts: hostCount,
      ttlSeconds,
      expiries,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      calls,
      failedCalls: failures.length,
      failures: [...new Set(failures)],
      refreshes,
      refreshesPerExpiry: refreshes / expiries,
      grantErrors,
      loginPrompts,
      tokensInClearOnDisk: scan.tokens.size,
      filesWithTokens: [...scan.files],
      tokensOnStderr,
      removal,
      removalRevokes: after !== undefined && after.status !== 200,
      afterRemoval: after === undefined ? 'no refresh token was issued' : `${after.status} ${after.error}`,
    };
  } finally {
    await Promise.all(hosts.map((h) => h.client.close().catch(() => {})));
    await side.close();
    await mcp.close();
    await as.close();
  }
}

/** Presents a refresh token at the token endpoint as a public client would. */
async function presentRefreshToken(
  as: OidcServer,
  refreshToken: string,
  clientId: string | undefined,
): Promise<{ status: number; error: string }> {
  const res = await fetch(`${as.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId ?? '',
    }),
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  return { status: res.status, error: body.error ?? (res.ok ? 'tokens issued' : '') };
}
