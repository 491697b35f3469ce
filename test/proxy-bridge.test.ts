/**
 * `keyward proxy` is a faithful bridge: in front of the MCP reference server
 * (`@modelcontextprotocol/server-everything`, unmodified, in Streamable HTTP mode), driven by the
 * MCP SDK's own stdio client as a host would drive it. The server sits behind a small gate that
 * demands the credential's API key as `Authorization: <token_type> <key>`, so every message has
 * gone through keyward's fetch. And the proxy under bad input: a line that is not JSON, the
 * server going away mid-session, stdin closing, an unknown credential, no daemon.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  CLI,
  type DaemonProcess,
  filesContaining,
  makeHome,
  REPO_ROOT,
  runCli,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';
import { daemonEnv, type ProxyHost, startHost } from './helpers/proxy-host.js';

const KEY = `evk_${crypto.randomBytes(16).toString('hex')}`;
const TOKEN_TYPE = 'ApiKey';
const EVERYTHING = path.join(
  REPO_ROOT,
  'node_modules',
  '@modelcontextprotocol',
  'server-everything',
  'dist',
  'index.js',
);

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts server-everything in Streamable HTTP mode (or the older HTTP+SSE one) on a free port. */
async function startEverything(
  mode: 'streamableHttp' | 'sse' = 'streamableHttp',
): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, mode], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${err}`)), 30_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/(listening|running) on port \d+/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`server-everything exited ${code}: ${err}`)));
  });
  return { port, child };
}

/** A gate in front of the server: passes requests carrying the key, refuses others with 401. */
interface Gate {
  url: string;
  seen: { allowed: number; refused: number };
  /** The `X-Tenant` header of every request let through (`--header` test). */
  tenants: string[];
  close(): Promise<void>;
}

async function startGate(
  upstreamPort: number,
  mcpPath = '/mcp',
  options: { cutOnce?: { match: string; afterMs: number } } = {},
): Promise<Gate> {
  const seen = { allowed: 0, refused: 0 };
  const tenants: string[] = [];
  let cut = options.cutOnce;
  const server = http.createServer(async (req, res) => {
    if (req.headers.authorization !== `${TOKEN_TYPE} ${KEY}`) {
      seen.refused += 1;
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    seen.allowed += 1;
    tenants.push(String(req.headers['x-tenant'] ?? ''));
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const upstream = http.request(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    // A network failure in the middle of one answer, the server staying up.
    if (cut !== undefined && body.includes(cut.match)) {
      setTimeout(() => res.destroy(), cut.afterMs);
      cut = undefined;
    }
    upstream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${mcpPath}`,
    seen,
    tenants,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Runs the proxy as a raw child: lines in, lines out. */
function rawProxy(home: TestHome, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'proxy', ...args], {
    env: home.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () =>
    stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, any>);
  return {
    child,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    lines,
    send: (line: string) => child.stdin.write(`${line}\n`),
    /** Resolves with the first message on stdout that matches. */
    async waitFor(match: (m: Record<string, any>) => boolean, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`timed out; stdout: ${stdout}; stderr: ${stderr}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

/** Runs the CLI in a fresh process and returns every module URL it resolved, and its exit code. */
function cliModules(home: TestHome, args: string[]): { loaded: string[]; code: number | null } {
  const hook =
    'data:text/javascript,export async function resolve(s, c, next) { const r = await next(s, c); ' +
    'process.stderr.write("LOADED " + r.url + "\\n"); return r; }';
  const loader = `data:text/javascript,${encodeURIComponent(
    `import { register } from 'node:module'; register(${JSON.stringify(hook)});`,
  )}`;
  const result = spawnSync(process.execPath, ['--import', loader, CLI, ...args], {
    env: home.env,
    input: '',
    encoding: 'utf8',
    timeout: 60_000,
  });
  const loaded = result.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length));
  return { loaded, code: result.status };
}

/**
 * A stateful MCP server on the SDK's own Streamable HTTP transport and its example event store
 * (resumable streams). Tools: `count` (calls in this session) and `slow` (progress every 2 s, then
 * an answer). Clearing `sessions` makes it forget them: it then answers 404 to their id, as the
 * spec says a server must (and as the SDK's transport does for an unknown id).
 */
async function startSessionServer() {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const initializes: unknown[] = [];
  const server = http.createServer(async (req, res) => {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const transport = sessions.get(id);
      if (transport === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
        return;
      }
      await transport.handleRequest(req, res);
      return;
    }
    const mcp = new McpServer({ name: 'sessions', version: '1.0.0' });
    let calls = 0;
    mcp.registerTool('count', { description: 'Counts calls in this session.' }, async () => {
      calls += 1;
      return { content: [{ type: 'text' as const, text: `call ${calls}` }] };
    });
    mcp.registerTool('slow', { description: 'Reports progress every 2 s, 7 times.' }, async (extra) => {
      const token = extra._meta?.progressToken;
      for (let step = 1; step <= 7; step++) {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        if (token !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: step, total: 7 },
          });
        }
      }
      return { content: [{ type: 'text' as const, text: 'slow done' }] };
    });
    // Called on notifications/initialized: the host's capabilities, as this session got them.
    mcp.server.oninitialized = () => initializes.push(mcp.server.getClientCapabilities());
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      eventStore: new InMemoryEventStore(),
      onsessioninitialized: (sid) => {
        sessions.set(sid, transport);
      },
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/mcp`,
    sessions,
    initializes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const INITIALIZE = (id: number) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

describe('keyward proxy in front of server-everything', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  let everything: { port: number; child: ChildProcess };
  let gate: Gate;
  const hosts: ProxyHost[] = [];

  const proxyEntry = (url: string, name = 'everything') => ({
    command: process.execPath,
    args: [CLI, 'proxy', name, '--url', url],
    env: daemonEnv(home.env),
  });

  before(async () => {
    home = makeHome();
    daemon = await startDaemon(home);
    const add = await runCli(home, ['add', 'everything', '--api-key', '--token-type', TOKEN_TYPE], {
      input: KEY,
    });
    assert.equal(add.code, 0, add.stderr);
    everything = await startEverything();
    gate = await startGate(everything.port);
  });

  after(async () => {
    for (const host of hosts) await host.close().catch(() => undefined);
    await gate?.close();
    everything?.child.kill('SIGKILL');
    await daemon?.stop();
    home?.cleanup();
  });

  test('the host capabilities reach the server; sampling, elicitation and roots come back through it', async () => {
    const sampled: string[] = [];
    const host = await startHost(proxyEntry(gate.url), {
      capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } },
    });
    hosts.push(host);
    host.client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      const first = request.params.messages[0]?.content;
      sampled.push(first && 'text' in first ? String(first.text) : '');
      return { role: 'assistant', model: 'host-model', content: { type: 'text', text: 'sampled-by-host' } };
    });
    host.client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: 'accept',
      content: { name: 'Ada Lovelace', check: true },
    }));
    host.client.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: 'file:///work/host-root', name: 'host-root' }],
    }));

    // The server registers these tools only for a client that declared the capability.
    const { tools } = await host.client.listTools();
    const names = tools.map((t) => t.name);
    for (const name of ['echo', 'trigger-sampling-request', 'trigger-elicitation-request', 'get-roots-list'])
      assert.ok(names.includes(name), `${name} missing from ${names.join(', ')}`);

    const echo = await host.client.callTool({
      name: 'echo',
      arguments: { message: 'hello through keyward' },
    });
    assert.match(JSON.stringify(echo.content), /hello through keyward/);

    const sampling = await host.client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'ping-from-server', maxTokens: 10 },
    });
    assert.match(JSON.stringify(sampling.content), /sampled-by-host/);
    assert.ok(sampled.some((s) => s.includes('ping-from-server')));

    const elicited = await host.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(elicited.content), /Ada Lovelace/);

    const roots = await host.client.callTool({ name: 'get-roots-list', arguments: {} });
    assert.match(JSON.stringify(roots.content), /file:\/\/\/work\/host-root/);

    assert.ok(gate.seen.allowed > 0);
    assert.equal(gate.seen.refused, 0);
  });

  test('progress and logging notifications arrive at the host', async () => {
    const host = await startHost(proxyEntry(gate.url), { capabilities: {} });
    hosts.push(host);
    const progress: number[] = [];
    const result = await host.client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress), timeout: 30_000 },
    );
    assert.match(JSON.stringify(result.content), /Long running operation completed/);
    // The SDK's Protocol handles a notification a microtask after a response that came in the same
    // read, so the last progress may lose the race at the host; what the proxy wrote is checked
    // line by line in the raw test below.
    assert.deepEqual(progress.slice(0, 2), [1, 2]);

    // Logging comes on the session's GET stream, not in answer to a request.
    const logged = new Promise<string>((resolve) => {
      host.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => resolve(n.params.level));
    });
    await host.client.setLoggingLevel('debug');
    await host.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    const level = await Promise.race([
      logged,
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no log notification')), 20_000)),
    ]);
    assert.equal(typeof level, 'string');
    await host.client.callTool({ name: 'toggle-simulated-logging', arguments: {} });

    // Nothing but MCP on stdout, and the key nowhere it should not be.
    assert.ok(!host.stderr().includes(KEY));
    assert.deepEqual(filesContaining(home.home, KEY), []);
  });

  test('a line that is not JSON-RPC gets a JSON-RPC error and the proxy keeps serving; stdin closing ends it with 0', async () => {
    const proxy = rawProxy(home, ['everything', '--url', gate.url]);
    proxy.send('this is not json');
    proxy.send('{"jsonrpc":"2.0","no":"method"}');
    proxy.send(INITIALIZE(1));
    const parse = await proxy.waitFor((m) => m.error?.code === -32700);
    assert.equal(parse.id, null);
    const invalid = await proxy.waitFor((m) => m.error?.code === -32600);
    assert.equal(invalid.id, null);
    const init = await proxy.waitFor((m) => m.id === 1);
    assert.ok(init.result?.serverInfo);
    proxy.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    proxy.send('{"jsonrpc":"2.0","id":2,"method":"tools/list"}');
    const list = await proxy.waitFor((m) => m.id === 2);
    assert.ok(Array.isArray(list.result?.tools));
    // Progress passes in order, every notification before the answer it belongs to.
    proxy.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 0.3, steps: 3 },
          _meta: { progressToken: 'raw-progress' },
        },
      }),
    );
    await proxy.waitFor((m) => m.id === 3);
    const order = proxy
      .lines()
      .filter((m) => m.id === 3 || m.params?.progressToken === 'raw-progress')
      .map((m) => (m.id === 3 ? 'answer' : m.params.progress));
    assert.deepEqual(order, [1, 2, 3, 'answer']);
    proxy.child.stdin.end();
    assert.equal(await proxy.exited, 0);
    // stdout held JSON-RPC messages only: every line parsed.
    assert.ok(proxy.lines().every((m) => m.jsonrpc === '2.0'));
    assert.ok(!proxy.stderr().includes(KEY));
  });

  test('the server going away mid-session: the pending request gets an error answer, no hang, no crash', async () => {
    const ownGate = await startGate(everything.port);
    const proxy = rawProxy(home, ['everything', '--url', ownGate.url]);
    try {
      proxy.send(INITIALIZE(1));
      await proxy.waitFor((m) => m.id === 1);
      proxy.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
      await ownGate.close();
      proxy.send('{"jsonrpc":"2.0","id":2,"method":"tools/list"}');
      const failed = await proxy.waitFor((m) => m.id === 2);
      assert.equal(typeof failed.error?.code, 'number');
      assert.match(failed.error.message, /could not be reached/);
      // Still alive and answering.
      proxy.send('{"jsonrpc":"2.0","id":3,"method":"ping"}');
      const again = await proxy.waitFor((m) => m.id === 3);
      assert.ok(again.error);
      assert.equal(proxy.child.exitCode, null);
    } finally {
      proxy.child.stdin.end();
      assert.equal(await proxy.exited, 0);
    }
  });

  test('the server dying in the middle of an answer: the host gets an error, not a hang', {
    timeout: 120_000,
  }, async () => {
    const ownGate = await startGate(everything.port);
    const host = await startHost(proxyEntry(ownGate.url), { capabilities: {} });
    hosts.push(host);
    const progress: number[] = [];
    const call = host.client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } },
      undefined,
      // Longer than the test: an answer must come from the proxy, not the host's own timeout.
      { onprogress: (p) => progress.push(p.progress), timeout: 300_000 },
    );
    while (progress.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    await ownGate.close();
    await assert.rejects(call, (err: Error & { code?: number }) => {
      assert.equal(err.code, -32000);
      assert.match(err.message, /closed the stream before answering/);
      return true;
    });
  });

  test('a stream cut in the middle of an answer is resumed with Last-Event-ID and the answer arrives', async () => {
    const sdkServer = await startSessionServer();
    const flaky = await startGate(sdkServer.port, '/mcp', { cutOnce: { match: '"slow"', afterMs: 3000 } });
    try {
      const host = await startHost(proxyEntry(flaky.url), { capabilities: {} });
      hosts.push(host);
      const progress: number[] = [];
      // 14 s, longer than the proxy's 10 s grace: the resumed stream must count as the answer's.
      const result = await host.client.callTool({ name: 'slow', arguments: {} }, undefined, {
        onprogress: (p) => progress.push(p.progress),
        timeout: 120_000,
      });
      assert.match(JSON.stringify(result.content), /slow done/);
      assert.deepEqual(progress.slice(0, 6), [1, 2, 3, 4, 5, 6]);
      assert.match(host.stderr(), /SSE stream disconnected/);
    } finally {
      await flaky.close();
      await sdkServer.close();
    }
  });

  test('a server that only speaks the older HTTP+SSE transport is reached through the fallback', async () => {
    const legacy = await startEverything('sse');
    const legacyGate = await startGate(legacy.port, '/sse');
    try {
      const host = await startHost(proxyEntry(legacyGate.url), { capabilities: { sampling: {} } });
      hosts.push(host);
      host.client.setRequestHandler(CreateMessageRequestSchema, async () => ({
        role: 'assistant',
        model: 'host-model',
        content: { type: 'text', text: 'sampled-over-sse' },
      }));
      const echo = await host.client.callTool({ name: 'echo', arguments: { message: 'over sse' } });
      assert.match(JSON.stringify(echo.content), /over sse/);
      const sampling = await host.client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'legacy', maxTokens: 5 },
      });
      assert.match(JSON.stringify(sampling.content), /sampled-over-sse/);
      assert.match(host.stderr(), /trying the older HTTP\+SSE transport/);
      assert.equal(legacyGate.seen.refused, 0);
    } finally {
      await legacyGate.close();
      legacy.child.kill('SIGKILL');
    }
  });

  test('a session the server forgot is replaced by replaying the host initialize; the host sees no error', async () => {
    const sdkServer = await startSessionServer();
    const { sessions, initializes, url } = sdkServer;
    try {
      const host = await startHost(proxyEntry(url), { capabilities: { roots: { listChanged: true } } });
      hosts.push(host);
      const text = async () =>
        JSON.stringify((await host.client.callTool({ name: 'count', arguments: {} })).content);
      assert.match(await text(), /call 1/);
      assert.match(await text(), /call 2/);
      sessions.clear();
      // A new session: its first call, and the server was initialized with the host's capabilities.
      assert.match(await text(), /call 1/);
      assert.equal(initializes.length, 2);
      assert.deepEqual(initializes[1], initializes[0]);
      assert.deepEqual(initializes[0], { roots: { listChanged: true } });
      assert.match(host.stderr(), /ended the session; starting a new one/);
    } finally {
      await sdkServer.close();
    }
  });

  test('an unknown credential exits 4; a credential with no server and no --url is a usage error', async () => {
    const unknown = await runCli(home, ['proxy', 'nope', '--url', gate.url]);
    assert.equal(unknown.code, 4);
    assert.match(unknown.stderr, /^keyward: NOT_FOUND: /m);
    assert.equal(unknown.stdout, '');
    const noUrl = await runCli(home, ['proxy', 'everything']);
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /--url/);
    const header = await runCli(home, [
      'proxy',
      'everything',
      '--url',
      gate.url,
      '--header',
      'Authorization: x',
    ]);
    assert.equal(header.code, 2);
    assert.equal(header.stdout, '');
  });

  test('only proxy loads the MCP SDK', () => {
    const sdk = (loaded: string[]) => loaded.filter((u) => u.includes('/@modelcontextprotocol/'));
    const status = cliModules(home, ['status', '--json']);
    assert.equal(status.code, 0);
    assert.ok(status.loaded.some((u) => u.includes('/dist/daemon/cli/commands/proxy.js')));
    assert.deepEqual(sdk(status.loaded), []);
    assert.deepEqual(sdk(cliModules(home, ['proxy', '--help']).loaded), []);
    // stdin is empty: the proxy starts, finds stdin closed, and exits 0.
    const proxy = cliModules(home, ['proxy', 'everything', '--url', gate.url]);
    assert.equal(proxy.code, 0);
    assert.ok(sdk(proxy.loaded).length > 0);
  });

  test('--header reaches the server on every request', async () => {
    const headerGate = await startGate(everything.port);
    try {
      const entry = proxyEntry(headerGate.url);
      const host = await startHost({ ...entry, args: [...entry.args, '--header', 'X-Tenant: acme'] });
      hosts.push(host);
      await host.client.listTools();
      assert.ok(headerGate.seen.allowed > 0);
      assert.deepEqual([...new Set(headerGate.tenants)], ['acme']);
      assert.equal(headerGate.tenants.length, headerGate.seen.allowed);
    } finally {
      await headerGate.close();
    }
  });

  test('the daemon going away mid-session: an error answer that names it, and the proxy keeps serving', async () => {
    const own = makeHome();
    const ownDaemon = await startDaemon(own);
    try {
      const add = await runCli(own, ['add', 'everything', '--api-key', '--token-type', TOKEN_TYPE], {
        input: KEY,
      });
      assert.equal(add.code, 0, add.stderr);
      const proxy = rawProxy(own, ['everything', '--url', gate.url]);
      proxy.send(INITIALIZE(1));
      await proxy.waitFor((m) => m.id === 1);
      proxy.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
      await ownDaemon.stop();
      proxy.send('{"jsonrpc":"2.0","id":2,"method":"tools/list"}');
      const failed = await proxy.waitFor((m) => m.id === 2);
      assert.match(failed.error?.message ?? '', /DAEMON_UNAVAILABLE/);
      proxy.send('{"jsonrpc":"2.0","id":3,"method":"ping"}');
      assert.ok((await proxy.waitFor((m) => m.id === 3)).error);
      proxy.child.stdin.end();
      assert.equal(await proxy.exited, 0);
    } finally {
      await ownDaemon.stop().catch(() => undefined);
      own.cleanup();
    }
  });

  test('no daemon: exit 3', async () => {
    const empty = makeHome();
    try {
      const res = await runCli(empty, ['proxy', 'everything', '--url', gate.url]);
      assert.equal(res.code, 3, res.stderr);
      assert.match(res.stderr, /^keyward: DAEMON_UNAVAILABLE: /m);
      assert.equal(res.stdout, '');
    } finally {
      empty.cleanup();
    }
  });
});
