/**
 * The message bridge of `keyward proxy`: JSON-RPC from the host on stdin goes to the remote MCP
 * server, and everything the server sends comes back on stdout, untouched. The MCP SDK's own
 * transports do the framing and the HTTP: `StdioServerTransport` towards the host,
 * `StreamableHTTPClientTransport` (session id, GET stream, resumption) towards the server, or
 * `SSEClientTransport` for a server that only speaks the older HTTP+SSE transport. No `Client` or
 * `Server` sits in between: the host's initialize (its capabilities), server-to-client requests,
 * progress, cancellation and logging all pass as they are.
 *
 * What the bridge adds is what a pipe cannot do by itself:
 * - the fallback of the spec's backwards-compatibility section: a POST initialize refused with
 *   400, 404 or 405 is retried over HTTP+SSE;
 * - the protocol version the server chose is set on the transport (the SDK's `Client` would do it);
 * - a session the server has forgotten (404 to a request with `Mcp-Session-Id`) is replaced: the
 *   host's own initialize is replayed, as the spec tells a client to, and the request resent;
 *   the host, which knows nothing of HTTP sessions, sees no error;
 * - a line on stdin that is not JSON-RPC gets a JSON-RPC error (-32700 / -32600) and the bridge
 *   keeps serving;
 * - a host request the server cannot answer gets a JSON-RPC error answer, never silence: when
 *   sending fails, and when the stream that should carry its answer ends without it and is not
 *   resumed (the SDK resumes a stream that carried event ids) within `orphanGraceMs`.
 */
import type { Readable, Writable } from 'node:stream';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { KeywardError } from '../../client/errors.js';
import type { ProxyFetch } from './remote-fetch.js';

/** HTTP statuses of a POST initialize that mean "try the older HTTP+SSE transport" (spec, backwards compatibility). */
const LEGACY_STATUSES = new Set([400, 404, 405]);

/** How long a request whose stream ended unanswered may wait for the SDK to resume that stream. */
const ORPHAN_GRACE_MS = 10_000;

/** How long a replayed initialize may take. */
const REINITIALIZE_TIMEOUT_MS = 30_000;

/** What the bridge needs. */
export interface BridgeOptions {
  url: URL;
  fetch: ProxyFetch;
  /** Extra headers for every request to the server (`--header`). */
  headers: Record<string, string>;
  stdin: Readable;
  stdout: Writable;
  /** Writes one diagnostic line to stderr (never a token). */
  log(line: string): void;
  /** Overrides `ORPHAN_GRACE_MS`. */
  orphanGraceMs?: number;
}

/** Which transport reached the server. */
export type RemoteKind = 'streamable-http' | 'sse';

/** A bridge between the host (stdio) and the remote MCP server. */
export class Bridge {
  readonly #options: BridgeOptions;
  readonly #host: StdioServerTransport;
  readonly #fetch: ProxyFetch;
  #remote: Transport | undefined;
  #kind: RemoteKind | undefined;
  /** Set once the first message (the host's initialize) has been sent: others wait for it. */
  #connected: Promise<void> | undefined;
  /** A replacement of a lost session, while one runs. */
  #renewing: Promise<void> | undefined;
  /** Host requests waiting for the server's answer: id → method. */
  readonly #pending = new Map<RequestId, string>();
  /** Pending requests whose stream ended without their answer: id → when. */
  readonly #orphans = new Map<RequestId, number>();
  /** The last event id of a stream that ended unanswered → the requests it carried (for its resumption). */
  readonly #resumable = new Map<string, RequestId[]>();
  /** The host's initialize and initialized messages, replayed for a new session. */
  #initialize: JSONRPCRequest | undefined;
  #initialized: JSONRPCMessage | undefined;
  /** The id of an initialize whose answer sets the protocol version. */
  #initializeId: RequestId | undefined;
  /** Answers the bridge waits for itself (a replayed initialize): they never reach the host. */
  readonly #internal = new Map<RequestId, (message: JSONRPCMessage) => void>();
  #internalSeq = 0;
  #closing = false;
  #done: (() => void) | undefined;
  readonly #finished: Promise<void>;

  constructor(options: BridgeOptions) {
    this.#options = options;
    this.#host = new StdioServerTransport(options.stdin, options.stdout);
    this.#fetch = (url, init) => options.fetch(url, init).then((res) => this.#watch(init, res));
    this.#finished = new Promise((resolve) => {
      this.#done = resolve;
    });
  }

  /** Which transport reached the server (undefined before the first message). */
  get remoteKind(): RemoteKind | undefined {
    return this.#kind;
  }

  /** Starts reading stdin; resolves when stdin ends and the bridge has shut down. */
  async run(): Promise<void> {
    this.#host.onmessage = (message) => this.#fromHost(message);
    this.#host.onerror = (error) => this.#hostError(error);
    const end = () => void this.close();
    this.#options.stdin.once('end', end);
    this.#options.stdin.once('close', end);
    // The host went away (EPIPE): nobody is left to answer.
    this.#options.stdout.once('error', end);
    await this.#host.start();
    await this.#finished;
  }

  /** Ends the session at the server (best effort) and stops. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const remote = this.#remote;
    if (remote instanceof StreamableHTTPClientTransport && remote.sessionId !== undefined) {
      // Spec: a client that no longer needs the session SHOULD DELETE it. Bounded, so a dead
      // server cannot hold the host's shutdown.
      await Promise.race([
        remote.terminateSession().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
    }
    await remote?.close().catch(() => undefined);
    await this.#host.close().catch(() => undefined);
    this.#done?.();
  }

  #fromHost(message: JSONRPCMessage): void {
    if (this.#closing) return;
    if (isJSONRPCRequest(message)) {
      this.#pending.set(message.id, message.method);
      if (isInitializeRequest(message)) {
        this.#initialize = message;
        this.#initializeId = message.id;
      }
    } else if (isJSONRPCNotification(message)) {
      if (message.method === 'notifications/initialized') this.#initialized = message;
      // A cancelled request gets no answer (MCP cancellation): nothing to report for it later.
      const cancelled = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      if (message.method === 'notifications/cancelled' && cancelled !== undefined) {
        this.#pending.delete(cancelled);
        this.#orphans.delete(cancelled);
      }
    }
    if (this.#connected === undefined) {
      this.#connected = this.#connect(message);
      return;
    }
    void this.#connected.then(() => this.#forward(message));
  }

  /** Sends the first message, choosing the transport: Streamable HTTP, else the older HTTP+SSE. */
  async #connect(first: JSONRPCMessage): Promise<void> {
    const streamable = this.#streamable();
    await streamable.start();
    try {
      await streamable.send(first);
      return;
    } catch (err) {
      const legacy =
        err instanceof StreamableHTTPError &&
        LEGACY_STATUSES.has(err.code ?? 0) &&
        isInitializeRequest(first);
      if (!legacy) {
        this.#failed(first, err);
        return;
      }
    }
    this.#options.log(
      `keyward: ${this.#options.url.href} refused Streamable HTTP; trying the older HTTP+SSE transport`,
    );
    this.#detach(streamable);
    await streamable.close().catch(() => undefined);
    const sse = new SSEClientTransport(this.#options.url, {
      fetch: this.#fetch,
      requestInit: { headers: this.#options.headers },
    });
    this.#attach(sse, 'sse');
    try {
      await sse.start();
      await sse.send(first);
    } catch (err) {
      this.#failed(first, err);
    }
  }

  #streamable(): StreamableHTTPClientTransport {
    const transport = new StreamableHTTPClientTransport(this.#options.url, {
      fetch: this.#fetch,
      requestInit: { headers: this.#options.headers },
    });
    this.#attach(transport, 'streamable-http');
    return transport;
  }

  #attach(remote: Transport, kind: RemoteKind): void {
    this.#remote = remote;
    this.#kind = kind;
    remote.onmessage = (message) => this.#fromRemote(message);
    remote.onerror = (error) => {
      if (!this.#closing && remote === this.#remote)
        this.#options.log(`keyward: remote MCP server: ${oneLine(error)}`);
    };
  }

  #detach(remote: Transport): void {
    remote.onmessage = undefined;
    remote.onerror = undefined;
  }

  async #forward(message: JSONRPCMessage): Promise<void> {
    if (this.#renewing !== undefined) await this.#renewing.catch(() => undefined);
    const remote = this.#remote;
    if (remote === undefined || this.#closing) return;
    const session = remote instanceof StreamableHTTPClientTransport ? remote.sessionId : undefined;
    try {
      await remote.send(message);
    } catch (err) {
      const lost = err instanceof StreamableHTTPError && err.code === 404 && session !== undefined;
      if (!lost || this.#initialize === undefined) {
        this.#failed(message, err);
        return;
      }
      try {
        // Another message may have replaced the session already.
        if (remote === this.#remote) {
          this.#renewing ??= this.#renewSession().finally(() => {
            this.#renewing = undefined;
          });
          await this.#renewing;
        } else if (this.#renewing !== undefined) {
          await this.#renewing;
        }
        await this.#remote?.send(message);
      } catch (again) {
        this.#failed(message, again);
      }
    }
  }

  /**
   * Starts a new session after the server forgot ours (spec: on a 404 to a request carrying
   * `Mcp-Session-Id`, the client MUST start a new session with a new InitializeRequest): the
   * host's initialize and initialized are replayed, and the answer kept from the host, which
   * already has one.
   */
  async #renewSession(): Promise<void> {
    const initialize = this.#initialize;
    if (initialize === undefined) throw new Error('the host never initialized');
    const old = this.#remote;
    if (old !== undefined) {
      this.#detach(old);
      await old.close().catch(() => undefined);
    }
    this.#options.log('keyward: the remote MCP server ended the session; starting a new one');
    const transport = this.#streamable();
    await transport.start();
    const id = `keyward-proxy-initialize-${++this.#internalSeq}`;
    const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
      this.#internal.set(id, resolve);
      setTimeout(
        () => reject(new Error('the server did not answer the new initialize')),
        REINITIALIZE_TIMEOUT_MS,
      ).unref();
    });
    try {
      await transport.send({ ...initialize, id });
      const answer = await answered;
      if (!isJSONRPCResultResponse(answer)) throw new Error('the server refused the new initialize');
      const version = (answer.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof version === 'string') transport.setProtocolVersion(version);
    } finally {
      this.#internal.delete(id);
    }
    if (this.#initialized !== undefined) await transport.send(this.#initialized);
  }

  #fromRemote(message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = (message as { id?: RequestId }).id;
      if (id !== undefined) {
        const internal = this.#internal.get(id);
        if (internal !== undefined) {
          internal(message);
          return;
        }
        if (id === this.#initializeId && isJSONRPCResultResponse(message)) {
          const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
          if (typeof version === 'string') this.#remote?.setProtocolVersion?.(version);
          this.#initializeId = undefined;
        }
        this.#pending.delete(id);
        this.#orphans.delete(id);
      }
    }
    void this.#toHost(message);
  }

  /**
   * Watches the server's event streams for the host requests they carry: a POST's stream carries
   * the requests in its body, and a GET with `Last-Event-ID` resumes (for the SDK) the stream whose
   * last event that was. A stream that ends before answering and is not resumed within the grace
   * would leave its requests waiting forever: they get an error answer instead.
   */
  #watch(init: RequestInit | undefined, response: Response): Response {
    const streaming = (response.headers.get('content-type') ?? '').includes('text/event-stream');
    if (!response.ok || !streaming || response.body === null) return response;
    const method = (init?.method ?? 'GET').toUpperCase();
    let ids: RequestId[];
    if (method === 'POST') {
      ids = requestIds(init?.body);
    } else {
      const resumed = new Headers(init?.headers).get('last-event-id');
      ids = (resumed !== null && this.#resumable.get(resumed)) || [];
      if (resumed !== null) this.#resumable.delete(resumed);
      // Resumed: their answers may still come, on this stream.
      for (const id of ids) this.#orphans.delete(id);
    }
    if (ids.length === 0) return response;
    return new Response(
      watchEvents(response.body, (lastEventId) => this.#streamEnded(ids, lastEventId)),
      { status: response.status, statusText: response.statusText, headers: response.headers },
    );
  }

  #streamEnded(ids: RequestId[], lastEventId: string | undefined): void {
    const open = ids.filter((id) => this.#pending.has(id));
    if (open.length === 0) return;
    if (lastEventId !== undefined) this.#resumable.set(lastEventId, open);
    const now = Date.now();
    for (const id of open) this.#orphans.set(id, now);
    const grace = this.#options.orphanGraceMs ?? ORPHAN_GRACE_MS;
    setTimeout(() => this.#checkOrphans(grace), grace).unref();
  }

  #checkOrphans(grace: number): void {
    if (this.#closing) return;
    for (const [eventId, ids] of [...this.#resumable]) {
      if (!ids.some((id) => this.#pending.has(id))) this.#resumable.delete(eventId);
    }
    const now = Date.now();
    for (const [id, since] of [...this.#orphans]) {
      if (now - since < grace) continue;
      this.#orphans.delete(id);
      if (!this.#pending.delete(id)) continue;
      void this.#toHost({
        jsonrpc: '2.0',
        id,
        error: {
          code: ErrorCode.ConnectionClosed,
          message: `keyward proxy: the remote MCP server ${this.#options.url.origin} closed the stream before answering`,
        },
      });
    }
  }

  /** Answers a host request the server could not be asked; other messages are reported on stderr. */
  #failed(message: JSONRPCMessage, err: unknown): void {
    const text = explain(err, this.#options.url.origin);
    if (!isJSONRPCRequest(message) || !this.#pending.delete(message.id)) {
      this.#options.log(`keyward: ${text}`);
      return;
    }
    this.#orphans.delete(message.id);
    void this.#toHost({
      jsonrpc: '2.0',
      id: message.id,
      error: { code: ErrorCode.ConnectionClosed, message: `keyward proxy: ${text}` },
    });
  }

  /** A line on stdin that is not JSON-RPC: answer as JSON-RPC 2.0 §5.1 says and keep serving. */
  #hostError(error: Error): void {
    const parse = error instanceof SyntaxError;
    const invalid = error.name === 'ZodError' || (error as { issues?: unknown }).issues !== undefined;
    if (!parse && !invalid) {
      this.#options.log(`keyward: reading stdin: ${oneLine(error)}`);
      return;
    }
    const reply = {
      jsonrpc: '2.0',
      id: null,
      error: parse
        ? { code: ErrorCode.ParseError, message: 'Parse error: the line is not JSON' }
        : {
            code: ErrorCode.InvalidRequest,
            message: 'Invalid Request: the line is not a JSON-RPC 2.0 message',
          },
    };
    void this.#toHost(reply as unknown as JSONRPCMessage);
  }

  async #toHost(message: JSONRPCMessage): Promise<void> {
    if (this.#closing) return;
    try {
      await this.#host.send(message);
    } catch (err) {
      this.#options.log(`keyward: writing to the host: ${oneLine(err)}`);
    }
  }
}

/** The ids of the requests in a POST body (one message, or a batch). */
function requestIds(body: RequestInit['body'] | undefined): RequestId[] {
  if (typeof body !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(body);
    return (Array.isArray(parsed) ? parsed : [parsed])
      .filter((m): m is JSONRPCRequest => isJSONRPCRequest(m))
      .map((m) => m.id);
  } catch {
    return [];
  }
}

/**
 * Passes an event stream through, noting the last event id (SSE `id:` lines), and calls `onEnd`
 * with it once when the stream ends, fails or is cancelled.
 */
function watchEvents(
  body: ReadableStream<Uint8Array>,
  onEnd: (lastEventId: string | undefined) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let partial = '';
  let lastEventId: string | undefined;
  let ended = false;
  const scan = (text: string) => {
    const lines = (partial + text).split(/\r\n|\r|\n/);
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('id:')) lastEventId = line.slice(line.startsWith('id: ') ? 4 : 3);
    }
  };
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd(lastEventId);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          end();
        } else {
          scan(decoder.decode(value, { stream: true }));
          controller.enqueue(value);
        }
      } catch (err) {
        controller.error(err);
        end();
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
}

/** What went wrong, in one line for the host or stderr; never a token. */
function explain(err: unknown, origin: string): string {
  if (err instanceof KeywardError) return `keyward: ${err.code}: ${oneLine(err)}`;
  if (err instanceof StreamableHTTPError && err.code !== undefined && err.code > 0) {
    const hint =
      err.code === 401
        ? ' (the token was refused even after a refresh: run keyward login for this credential)'
        : '';
    return `the remote MCP server ${origin} answered HTTP ${err.code}${hint}: ${oneLine(err)}`;
  }
  return `the remote MCP server ${origin} could not be reached: ${oneLine(err)}`;
}

/** One line about an error, for stderr. */
function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').slice(0, 500);
}
