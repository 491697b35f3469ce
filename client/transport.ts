/**
 * HTTP/1.1 over the daemon's Unix socket (or named pipe), with nothing but `node:http`. The SDK and
 * the CLI both speak to the daemon through `requestJson`.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { isErrorCode } from '../shared/errors.js';
import { API_PREFIX } from '../shared/protocol.js';
import { daemonUnavailable, KeywardError } from './errors.js';
import { assertTrustedSocket } from './socket-trust.js';

/** Where and how to reach the daemon. */
export interface TransportOptions {
  socketPath: string;
  /** Sent as `Authorization: Bearer`: a client token, or the CLI's admin token. */
  bearer?: string | undefined;
  timeoutMs: number;
  agent?: http.Agent;
}

/**
 * A keep-alive agent that checks the socket (socket-trust.ts) before each new connection: a
 * kept-alive connection goes on to the peer it was checked for, so requests on it skip the two
 * lstat calls.
 */
class CheckingAgent extends http.Agent {
  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    try {
      if (options.socketPath !== undefined) assertTrustedSocket(options.socketPath);
    } catch (err) {
      // Handing the error to the callback (and no socket back) makes the request emit it.
      callback?.(err as Error, undefined as unknown as Duplex);
      return undefined as unknown as Duplex;
    }
    return super.createConnection(options, callback);
  }
}

// Keep-alive agents, one per socket: a connection per request would cost a handshake each time.
const agents = new Map<string, http.Agent>();

function agentFor(socketPath: string): http.Agent {
  let agent = agents.get(socketPath);
  if (!agent) {
    agent = new CheckingAgent({ keepAlive: true, maxSockets: 64 });
    agents.set(socketPath, agent);
  }
  return agent;
}

const UNREACHABLE = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EACCES',
  'EPERM',
  'ENOTSOCK',
  'EPIPE',
  'EAGAIN',
]);

/** Connection attempts when the daemon's accept queue is full (EAGAIN), and the first backoff. */
const BUSY_ATTEMPTS = 9;
const BUSY_BACKOFF_MS = 5;

/**
 * Sends one request under `/v1` and returns the parsed JSON answer; error answers become
 * `KeywardError`. A connect that fails with EAGAIN (a Unix socket's accept queue is full during a
 * burst of new connections) never reached the daemon, so it is retried after a short, jittered,
 * growing pause. Before any new connection, the socket and its directory must be this user's
 * alone (socket-trust.ts): otherwise it fails with FORBIDDEN and sends nothing.
 */
export async function requestJson<T>(
  options: TransportOptions,
  method: string,
  route: string,
  body?: unknown,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      // Our agents check each new connection; a caller's own agent cannot, so check every request.
      if (options.agent !== undefined) assertTrustedSocket(options.socketPath);
      return await requestOnce<T>(options, method, route, body);
    } catch (err) {
      const busy =
        err instanceof KeywardError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN';
      if (!busy || attempt >= BUSY_ATTEMPTS) throw err;
      const pause = BUSY_BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

function requestOnce<T>(
  options: TransportOptions,
  method: string,
  route: string,
  body?: unknown,
): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;

  return new Promise<T>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: options.socketPath,
        path: `${API_PREFIX}${route}`,
        method,
        headers,
        agent: options.agent ?? agentFor(options.socketPath),
        timeout: options.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            reject(
              new KeywardError('INTERNAL', `the daemon answered HTTP ${status} with a body that is not JSON`),
            );
            return;
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
          const code = isErrorCode(error?.code) ? error.code : 'INTERNAL';
          const message =
            typeof error?.message === 'string' ? error.message : `the daemon answered HTTP ${status}`;
          reject(new KeywardError(code, message, { status }));
        });
      },
    );
    req.on('timeout', () => {
      req.destroy(
        new KeywardError(
          'DAEMON_UNAVAILABLE',
          `the keyward daemon did not answer within ${options.timeoutMs} ms`,
        ),
      );
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof KeywardError) reject(err);
      else if (err.code && UNREACHABLE.has(err.code)) reject(daemonUnavailable(options.socketPath, err));
      else
        reject(
          new KeywardError('DAEMON_UNAVAILABLE', `talking to the keyward daemon failed: ${err.message}`, {
            cause: err,
          }),
        );
    });
    req.end(payload);
  });
}
