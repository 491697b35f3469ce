/**
 * The client side of the floors (floor-server.ts): starting a floor server as its own process,
 * and an echo round trip over `node:net` that the load generator can drive.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FLOOR_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor-server.js');

/** A running floor server. */
export interface FloorServer {
  pid: number;
  socketPath: string;
  stop(): Promise<void>;
}

/** Starts `floor-server.js <mode> <socket>` and waits until it listens. */
export async function startFloorServer(mode: 'echo' | 'http', socketPath: string): Promise<FloorServer> {
  const child: ChildProcess = spawn(process.execPath, [FLOOR_SERVER, mode, socketPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
    child.stdout?.once('data', () => resolve());
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid as number,
    socketPath,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One connection to the echo floor, used by one worker at a time. */
export class EchoConnection {
  readonly #socket: net.Socket;
  #expected = 0;
  #received = 0;
  #done: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#received += chunk.length;
      if (this.#received >= this.#expected && this.#done !== undefined) {
        const done = this.#done;
        this.#done = undefined;
        done();
      }
    });
  }

  /** Connects to the echo floor's socket. */
  static connect(socketPath: string): Promise<EchoConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath, () => resolve(new EchoConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends `message` and resolves once all of it came back. */
  roundTrip(message: Buffer): Promise<void> {
    this.#expected = message.length;
    this.#received = 0;
    return new Promise((resolve) => {
      this.#done = resolve;
      this.#socket.write(message);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}
