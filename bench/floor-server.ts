/**
 * The physical floors keyward is compared with, as a separate process like the daemon:
 * - `echo <socket>`: a bare `node:net` echo over a Unix socket (what any local IPC costs);
 * - `http <socket>`: a bare `node:http` server on a Unix socket answering every request with a
 *   fixed token object (what HTTP framing in Node costs, without fastify, routing or the vault).
 * Prints `ready` on stdout once listening; exits on SIGTERM.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

// The answer of the HTTP floor: a token object of the size the daemon sends.
const FLOOR_TOKEN_BODY = JSON.stringify({
  access_token: `sk-bench-${'x'.repeat(40)}`,
  token_type: 'Bearer',
  expires_at: null,
  scope: null,
});

const [mode, socketPath] = process.argv.slice(2);
if ((mode !== 'echo' && mode !== 'http') || socketPath === undefined) {
  process.stderr.write('usage: floor-server echo|http <socket>\n');
  process.exit(2);
}
fs.rmSync(socketPath, { force: true });
const server =
  mode === 'echo'
    ? net.createServer((socket) => socket.pipe(socket))
    : http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, {
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(FLOOR_TOKEN_BODY),
          });
          res.end(FLOOR_TOKEN_BODY);
        });
      });
server.listen(socketPath, () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
