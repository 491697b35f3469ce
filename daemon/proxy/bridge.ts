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
 * - a line on stdin that is not JSON-RPC gets a JSON-RPC error (-32700 / -32600) and the bridge
 *   keeps serving;
 * - a request the server cannot be reached for gets a JSON-RPC error answer, never silence.
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
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { ProxyFetch } from './remote-fetch.js';

/** HTTP statuses of a POST initialize that mean "try the older HTTP+SSE transport" (spec, backwards compatibility). */
const LEGACY_STATUSES = new Set([400, 404, 405]);

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
}

/** Which transport reached the server. */
export type RemoteKind = 'streamable-http' | 'sse';

/** A bridge between the host (stdio) and the remote MCP server. */
export class Bridge {
  readonly #options: BridgeOptions;
  readonly #host: StdioServerTransport;
  #remote: Transport | undefined;
  #kind: RemoteKind | undefined;
  /** Set once the first message (the host's initialize) has been sent: others wait for it. */
  #connected: Promise<void> | undefined;
  /** Host requests waiting for the server's answer: id → method. */
  readonly #pending = new Map<RequestId, string>();
  #initializeId: RequestId | undefined;
  #closing = false;
  #done: (() => void) | undefined;
  readonly #finished: Promise<void>;

  constructor(options: BridgeOptions) {
    this.#options = options;
    this.#host = new StdioServerTransport(options.stdin, options.stdout);
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
    if (isJSONRPCRequest(message)) this.#pending.set(message.id, message.method);
    if (this.#connected === undefined) {
      this.#connected = this.#connect(message);
      return;
    }
    void this.#connected.then(() => this.#forward(message));
  }

  /** Sends the first message, choosing the transport: Streamable HTTP, else the older HTTP+SSE. */
  async #connect(first: JSONRPCMessage): Promise<void> {
    if (isInitializeRequest(first)) this.#initializeId = (first as { id: RequestId }).id;
    const streamable = new StreamableHTTPClientTransport(this.#options.url, {
      fetch: this.#options.fetch,
      requestInit: { headers: this.#options.headers },
    });
    this.#attach(streamable, 'streamable-http');
    await streamable.start();
    try {
      await streamable.send(first);
      return;
    } catch (err) {
      const legacy =
        err instanceof StreamableHTTPError &&
        LEGACY_STATUSES.has(err.code ?? 0) &&
        this.#initializeId !== undefined;
      if (!legacy) {
        this.#failed(first, err);
        return;
      }
    }
    this.#options.log(
      `keyward: ${this.#options.url.href} refused Streamable HTTP; trying the older HTTP+SSE transport`,
    );
    await streamable.close().catch(() => undefined);
    const sse = new SSEClientTransport(this.#options.url, {
      fetch: this.#options.fetch,
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

  #attach(remote: Transport, kind: RemoteKind): void {
    this.#remote = remote;
    this.#kind = kind;
    remote.onmessage = (message) => this.#fromRemote(message);
    remote.onerror = (error) => {
      if (!this.#closing) this.#options.log(`keyward: remote MCP server: ${describe(error)}`);
    };
  }

  async #forward(message: JSONRPCMessage): Promise<void> {
    const remote = this.#remote;
    if (remote === undefined || this.#closing) return;
    try {
      await remote.send(message);
    } catch (err) {
      this.#failed(message, err);
    }
  }

  #fromRemote(message: JSONRPCMessage): void {
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = (message as { id?: RequestId }).id;
      if (id !== undefined) {
        if (id === this.#initializeId && isJSONRPCResultResponse(message)) {
          const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
          if (typeof version === 'string') this.#remote?.setProtocolVersion?.(version);
          this.#initializeId = undefined;
        }
        this.#pending.delete(id);
      }
    }
    void this.#toHost(message);
  }

  /** Answers a host request the server could not be asked; other messages are reported on stderr. */
  #failed(message: JSONRPCMessage, err: unknown): void {
    const text = `the remote MCP server ${this.#options.url.origin} could not be reached: ${describe(err)}`;
    if (!isJSONRPCRequest(message) || !this.#pending.delete(message.id)) {
      this.#options.log(`keyward: ${text}`);
      return;
    }
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
      this.#options.log(`keyward: reading stdin: ${describe(error)}`);
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
    try {
      await this.#host.send(message);
    } catch (err) {
      this.#options.log(`keyward: writing to the host: ${describe(err)}`);
    }
  }
}

/** One line about an error, for stderr. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').slice(0, 500);
}
