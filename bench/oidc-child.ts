/**
 * The oidc-provider fixture in its own process, so that serving refreshes does not run on the
 * benchmark's event loop and inflate the latencies it measures. Started with `fork()` by
 * oidc-process.ts; answers calls over the IPC channel.
 */
import { type OidcServer, type OidcServerOptions, startOidcServer } from '../test/fixtures/oidc-server.js';

/** A call from the parent. */
export interface OidcCall {
  id: number;
  method:
    | 'completeAuthorization'
    | 'approveDeviceCode'
    | 'events'
    | 'resetEvents'
    | 'forgetGrants'
    | 'delayTokenRequests'
    | 'close';
  arg?: string;
}

async function answer(server: OidcServer, call: OidcCall): Promise<unknown> {
  switch (call.method) {
    case 'completeAuthorization':
      return { status: (await server.completeAuthorization(call.arg ?? '')).status };
    case 'approveDeviceCode':
      return server.approveDeviceCode(call.arg ?? '');
    case 'events':
      return server.events;
    case 'resetEvents':
      return server.resetEvents();
    case 'forgetGrants':
      return server.forgetGrants();
    case 'delayTokenRequests':
      // Every later token request waits this long first, as at a distant authorization server.
      return server.injectTokenFailures(1_000_000, { delayMs: Number(call.arg) });
    case 'close':
      await server.close();
      setImmediate(() => process.exit(0));
      return undefined;
  }
}

if (process.send !== undefined) {
  const options = JSON.parse(process.argv[2] ?? '{}') as OidcServerOptions;
  const server = await startOidcServer(options);
  process.on('message', (call: OidcCall) => {
    answer(server, call).then(
      (result) => process.send?.({ id: call.id, result }),
      (err: unknown) => process.send?.({ id: call.id, error: (err as Error).message }),
    );
  });
  process.send({ ready: true, issuer: server.issuer, clients: server.clients, resource: server.resource });
  // The parent going away (even killed) ends this process too.
  process.on('disconnect', () => process.exit(0));
}
