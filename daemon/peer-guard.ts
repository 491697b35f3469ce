/**
 * The connection-level uid check (contract.md "Access control"): where the kernel reports who
 * connected (Linux `SO_PEERCRED`, macOS `getpeereid`), a peer of another uid is cut off before it
 * can send a byte that gets parsed, even if the socket's modes were loosened. As in ssh-agent,
 * this is checked once per connection, on accept. Where peer credentials are unavailable, the
 * socket's 0600 mode in its 0700 directory is the only barrier, and the daemon says so once.
 */
import type { Server, Socket } from 'node:net';
import type { Logger } from './log.js';
import { type PeerCred, peerCredSupport, readPeerCred } from './peer-cred.js';

/** Why a connection was refused. */
export type PeerRefusal = 'other-uid' | 'no-credentials';

/** What the guard needs. */
export interface PeerGuardOptions {
  log: Logger;
  /** Called for each refused connection, for the audit log. */
  onRefused?: (peer: PeerCred | null, reason: PeerRefusal) => void;
  /** The uid allowed in; the daemon's own by default. */
  uid?: number;
}

const peers = new WeakMap<Socket, PeerCred>();

/** Returns the kernel's record of who is on the other end of an accepted socket, where known. */
export function peerOf(socket: Socket): PeerCred | undefined {
  return peers.get(socket);
}

/**
 * Checks every connection `server` accepts; returns whether the check is active here. Call before
 * the server listens.
 */
export function guardConnections(server: Server, opts: PeerGuardOptions): boolean {
  const support = peerCredSupport();
  const uid = opts.uid ?? process.getuid?.();
  if (!support.available || uid === undefined) {
    opts.log.warn(
      { reason: support.reason ?? 'this platform has no process uid' },
      'peer credentials are unavailable: other users are kept out only by the socket being 0600 in a 0700 directory',
    );
    return false;
  }
  // First in line, so no other 'connection' listener (the HTTP server's) ever sees a refused
  // socket alive; its parser would only read on a later tick anyway.
  server.prependListener('connection', (socket: Socket) => {
    const peer = readPeerCred(socket);
    if (peer !== null && peer.uid === uid) {
      peers.set(socket, peer);
      return;
    }
    // Where the kernel supports peer credentials, a socket without them is refused as well.
    const reason: PeerRefusal = peer === null ? 'no-credentials' : 'other-uid';
    socket.destroy();
    opts.log.warn(
      { peer_uid: peer?.uid ?? null, peer_pid: peer?.pid ?? null, peer_exe: peer?.exe ?? null, reason },
      'refused a connection from another user',
    );
    opts.onRefused?.(peer, reason);
  });
  return true;
}
