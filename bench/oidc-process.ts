/** The parent side of oidc-child.ts: the oidc-provider fixture in a child process. */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OidcServer, OidcServerOptions } from '../test/fixtures/oidc-server.js';
import type { OidcCall } from './oidc-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'oidc-child.js');

/** The fixture, reached over IPC. */
export interface OidcProcess {
  pid: number;
  issuer: string;
  clients: OidcServer['clients'];
  completeAuthorization(url: string): Promise<{ status: number }>;
  approveDeviceCode(userCode: string): Promise<void>;
  events(): Promise<OidcServer['events']>;
  resetEvents(): Promise<void>;
  /** Holds every later token request `ms` before serving it (a distant server's round trip). */
  delayTokenRequests(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Forks the fixture with `options` and waits until it serves. */
export async function startOidcProcess(options: OidcServerOptions = {}): Promise<OidcProcess> {
  const child: ChildProcess = fork(CHILD, [JSON.stringify(options)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const ready = new Promise<{ issuer: string; clients: OidcServer['clients'] }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the oidc fixture process exited with ${code}`)));
    child.on(
      'message',
      (msg: { ready?: boolean; id?: number; result?: unknown; error?: string } & Record<string, any>) => {
        if (msg.ready) {
          resolve({ issuer: msg.issuer, clients: msg.clients });
          return;
        }
        const call = pending.get(msg.id ?? -1);
        if (call === undefined) return;
        pending.delete(msg.id as number);
        if (msg.error !== undefined) call.reject(new Error(msg.error));
        else call.resolve(msg.result);
      },
    );
  });
  const { issuer, clients } = await ready;
  const call = <T>(method: OidcCall['method'], arg?: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, method, arg } satisfies OidcCall);
    });
  return {
    pid: child.pid as number,
    issuer,
    clients,
    completeAuthorization: (url) => call('completeAuthorization', url),
    approveDeviceCode: (code) => call('approveDeviceCode', code),
    events: () => call('events'),
    resetEvents: () => call('resetEvents'),
    delayTokenRequests: (ms) => call('delayTokenRequests', String(ms)),
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await call('close').catch(() => undefined);
      await exited;
    },
  };
}
