/**
 * A keyward daemon for benchmarks: the built CLI's `keyward daemon` in a throwaway home, at the
 * production log level (`info`), with the helpers the sections share.
 */
import {
  type DaemonProcess,
  makeHome,
  socketRequest,
  startDaemon,
  type TestHome,
} from '../test/helpers/daemon-process.js';

/** A running daemon and its home. */
export interface BenchDaemon {
  home: TestHome;
  daemon: DaemonProcess;
  socket: string;
  pid: number;
  /** Stops the daemon (SIGTERM) and removes its home. */
  close(): Promise<void>;
}

/** Starts `keyward daemon` in a fresh home. */
export async function startBenchDaemon(env: NodeJS.ProcessEnv = {}): Promise<BenchDaemon> {
  const home = makeHome({ KEYWARD_LOG_LEVEL: 'info', ...env });
  const daemon = await startDaemon(home);
  return {
    home,
    daemon,
    socket: home.socket,
    pid: daemon.child.pid as number,
    close: async () => {
      await daemon.stop();
      home.cleanup();
    },
  };
}

/** Stores a static API key through the socket API. */
export async function addApiKey(socket: string, name: string, secret: string): Promise<void> {
  const res = await socketRequest(socket, 'POST', '/v1/credentials', {
    body: { name, kind: 'api_key', secret },
  });
  if (res.status !== 201) throw new Error(`adding ${name} failed: HTTP ${res.status} ${res.text}`);
}
