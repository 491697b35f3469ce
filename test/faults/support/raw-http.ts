/**
 * One HTTP/1.1 exchange over a Unix socket with nothing between the test and the bytes: any
 * method, path, header or body, even ones `node:http`'s client refuses to send. The fuzz suite
 * uses it to reach the daemon's parser with what a hostile local process could write.
 */
import net from 'node:net';

/** What came back; `status` 0 when the daemon closed without an HTTP answer. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `request` and reads until the daemon closes (the request should say `connection: close`)
 * or `timeoutMs` passes. With `halfClose` the write side is ended after the bytes, for input that
 * may never form a whole request; Node's server then drops whatever answer is still pending, so a
 * well-formed request must not half-close.
 */
export function rawExchange(
  socketPath: string,
  request: Buffer,
  options: { timeoutMs?: number; halfClose?: boolean } = {},
): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {
      // A reset after the answer (or instead of one) is judged by what was read.
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks)));
    });
    socket.on('connect', () => {
      if (options.halfClose) socket.end(request);
      else socket.write(request);
    });
  });
}

/** Parses the first HTTP response in `bytes` (Content-Length or chunked body). */
export function parseResponse(bytes: Buffer): RawResponse {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return { status: 0, headers: {}, body: bytes.toString('latin1') };
  const [statusLine = '', ...headerLines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let rest = bytes.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.includes('chunked')) {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      if (lineEnd < 0) break;
      const size = Number.parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
      if (!(size > 0)) break;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      rest = rest.subarray(lineEnd + 2 + size + 2);
    }
    return { status, headers, body: Buffer.concat(parts).toString('utf8') };
  }
  const length = headers['content-length'] === undefined ? rest.length : Number(headers['content-length']);
  return { status, headers, body: rest.subarray(0, length).toString('utf8') };
}
