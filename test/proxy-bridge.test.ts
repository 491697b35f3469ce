/**
 * `keyward proxy` is a faithful bridge: in front of the MCP reference server
 * (`@modelcontextprotocol/server-everything`, unmodified, in Streamable HTTP mode), driven by the
 * MCP SDK's own stdio client as a host would drive it. The server sits behind a small gate that
 * demands the credential's API key as `Authorization: <token_type> <key>`, so every message has
 * gone through keyward's fetch. And the proxy under bad input: a line that is not JSON, the
 * server going away mid-session, stdin closing, an unknown credential, no daemon.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
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
  close(): Promise<void>;
}

async function startGate(upstreamPort: number, mcpPath = '/mcp'): Promise<Gate> {
  const seen = { allowed: 0, refused: 0 };
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `${TOKEN_TYPE} ${KEY}`) {
      seen.refused += 1;
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    seen.allowed += 1;
    const upstream = http.request(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${mcpPath}`,
    seen,
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
    // A stateful server on the SDK's own transport; "forgetting" answers 404 to the old session
    // id, as the spec says a server must (and as the SDK's transport does for an unknown id).
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
      const mcp = new McpServer({ name: 'forgetful', version: '1.0.0' });
      let calls = 0;
      mcp.registerTool('count', { description: 'Counts calls in this session.' }, async () => {
        calls += 1;
        return { content: [{ type: 'text' as const, text: `call ${calls}` }] };
      });
      // Called on notifications/initialized: the host's capabilities, as this session got them.
      mcp.server.oninitialized = () => initializes.push(mcp.server.getClientCapabilities());
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        onsessioninitialized: (sid) => {
          sessions.set(sid, transport);
        },
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
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
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
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
