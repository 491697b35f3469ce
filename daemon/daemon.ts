/**
 * The daemon's life: check the directories, open (or create) the vault, serve the socket API,
 * and on SIGTERM/SIGINT finish in-flight work, then exit 0.
 */
import path from 'node:path';
import { type KeywardPaths, resolvePaths } from '../shared/paths.js';
import type { StatusResponse } from '../shared/protocol.js';
import { VERSION } from '../shared/version.js';
import { AccessControl } from './access.js';
import { AccessService, auditEventOf } from './access-service.js';
import { ensureAdminToken } from './admin-token.js';
import { AuditLog } from './audit-log.js';
import { ClientRegistry } from './clients.js';
import { CredentialService } from './credential-service.js';
import { ensurePrivateDir } from './fs-safety.js';
import { acquirePidLock, inheritedSocketFd, listen, prepareSocketPath } from './listener.js';
import { createLogger, type Logger } from './log.js';
import { OAuthService } from './oauth/oauth-service.js';
import { disableDumps } from './peer-cred.js';
import { guardConnections } from './peer-guard.js';
import type { Secret } from './secret.js';
import { buildServer } from './server.js';
import { readServicePassphrase } from './service/passphrase-source.js';
import { readSandboxReport } from './service/sandbox-report.js';
import { testOverrideInt, testOverrideWarnings } from './test-overrides.js';
import { keyStoreWarning } from './vault/key-stores/index.js';
import { Vault } from './vault/vault.js';

/** How long shutdown may take before the process exits anyway. */
const SHUTDOWN_BOUND_MS = 15_000;

/** A running daemon. */
export interface RunningDaemon {
  paths: KeywardPaths;
  stop(): Promise<void>;
}

/** Opens the vault, creating it with the default key store on first start. */
async function openOrCreateVault(paths: KeywardPaths, log: Logger): Promise<Vault> {
  if (Vault.exists(paths)) return Vault.open(paths);
  const vault = await Vault.create(paths, { keyStore: 'auto' });
  log.info({ vault: paths.vault, key_store: vault.keyStore }, `created a new vault at ${paths.vault}`);
  return vault;
}

/** Says once that an upgraded vault's rows were sealed (authenticated) at this open. */
function logSealing(vault: Vault, log: Logger): void {
  if (vault.sealedOnOpen > 0) {
    log.warn(
      { rows: vault.sealedOnOpen },
      'sealed the rows of a vault from an older keyward (schema 2) with MACs',
    );
    vault.sealedOnOpen = 0;
  }
}

/** Starts the daemon and returns once it is serving. */
export async function startDaemon(
  options: { paths?: KeywardPaths; log?: Logger } = {},
): Promise<RunningDaemon> {
  const paths = options.paths ?? resolvePaths();
  const log = options.log ?? createLogger();
  // Everything the daemon creates is private to the user, whatever the caller's umask.
  process.umask(0o077);
  const startedAt = process.hrtime.bigint();
  for (const line of testOverrideWarnings()) log.warn(line);
  // Before any key is in memory: no core file, no same-uid debugger (where the addon can say so).
  const dumps = disableDumps();
  if (dumps.dumpable) {
    log.warn(
      { reason: dumps.reason },
      'could not make the daemon undumpable: a core dump, or a debugger of your own uid, could read its keys',
    );
  }

  ensurePrivateDir(paths.home);
  const releaseLock = acquirePidLock(path.join(paths.home, 'daemon.pid'));
  try {
    const fd = inheritedSocketFd();
    if (fd === undefined) await prepareSocketPath(paths.socket);

    // Read before anything is opened, so a misconfigured passphrase file stops the start-up
    // with its own sentence.
    const servicePassphrase = readServicePassphrase();
    const vault = await openOrCreateVault(paths, log);
    logSealing(vault, log);
    const keyWarning = keyStoreWarning(vault.keyStore, paths);
    if (keyWarning) log.warn({ key_file: paths.keyFile }, keyWarning);
    const adminToken = ensureAdminToken(paths);
    const invalidateWindowMs = testOverrideInt('KEYWARD_TEST_INVALIDATE_WINDOW_MS');
    const auditMaxBytes = testOverrideInt('KEYWARD_TEST_AUDIT_MAX_BYTES');
    const auditWindowMs = testOverrideInt('KEYWARD_TEST_AUDIT_WINDOW_MS');
    const oauth = new OAuthService({
      vault,
      log: log.child({ component: 'oauth' }),
      ...(invalidateWindowMs !== undefined ? { timings: { invalidateWindowMs } } : {}),
    });
    const credentials = new CredentialService({ vault, oauth, log });
    const audit = new AuditLog({
      file: paths.auditLog,
      store: vault,
      onWarning: (m) => log.warn(m),
      ...(auditMaxBytes !== undefined ? { maxBytes: auditMaxBytes } : {}),
      ...(auditWindowMs !== undefined ? { coalesceWindowMs: auditWindowMs } : {}),
    });
    // A passphrase vault gives the audit key once unlocked; entries wait in memory until then.
    if (!vault.locked) audit.start(vault.deriveKey('audit-log'));
    const clients = ClientRegistry.open(vault);
    const accessService = new AccessService({ vault, paths, clients, audit, log });
    const access = new AccessControl({ adminToken, clients, policy: () => accessService.policy() });
    log.info({ policy: accessService.policy() }, `access policy: ${accessService.policy()}`);

    const status = (): StatusResponse => {
      const list = credentials.list();
      // Read afresh on each call: cheap (a few /proc files), and never a stale claim.
      const sandbox = readSandboxReport(paths);
      return {
        version: VERSION,
        pid: process.pid,
        uptime_s: Math.round(Number(process.hrtime.bigint() - startedAt) / 1e6) / 1000,
        socket: paths.socket,
        vault: {
          path: paths.vault,
          key_store: vault.keyStore,
          credentials: list.length,
          ...(vault.locked ? { locked: true } : {}),
        },
        policy: accessService.policy(),
        credentials: list,
        ...(sandbox ? { sandbox } : {}),
      };
    };

    const unlock = async (passphrase: Secret): Promise<void> => {
      await vault.unlock(passphrase);
      logSealing(vault, log);
      audit.start(vault.deriveKey('audit-log'));
    };
    if (vault.locked && servicePassphrase) {
      try {
        await unlock(servicePassphrase);
        log.info('unlocked the vault with the passphrase the service manager provided');
      } catch (err) {
        // Keep serving: `keyward unlock` can still open it.
        log.warn({ err }, 'the service passphrase does not open the vault: run: keyward unlock');
      }
    }
    servicePassphrase?.wipe();
    if (vault.locked) log.warn('the vault is locked: run: keyward unlock');
    const app = buildServer({
      log,
      access,
      ctx: { credentials, status, unlock, access: accessService },
      onAuditedRoute: (event) => audit.append(auditEventOf(event, vault)),
    });
    guardConnections(app.server, {
      log,
      onRefused: (peer, reason) =>
        audit.append({
          event: 'connection.refused',
          peer,
          target: reason,
          outcome: 'denied',
          code: 'FORBIDDEN',
        }),
    });
    await listen(app, paths.socket, fd);
    log.info(
      { socket: paths.socket, version: VERSION, inherited: fd !== undefined },
      'keyward daemon listening',
    );

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        log.info('shutting down: finishing in-flight work');
        await app.close();
        await oauth.close();
        clients.close();
        audit.close();
        vault.close();
        adminToken.wipe();
        releaseLock();
        log.info('stopped');
      })();
      return stopping;
    };
    return { paths, stop };
  } catch (err) {
    releaseLock();
    throw err;
  }
}

/** Runs the daemon in the foreground until SIGTERM or SIGINT; resolves with the exit code. */
export async function runDaemon(): Promise<number> {
  const log = createLogger();
  const daemon = await startDaemon({ log });
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'signal received');
      const timer = setTimeout(() => {
        log.error('shutdown took too long; exiting');
        resolve(1);
      }, SHUTDOWN_BOUND_MS);
      timer.unref();
      daemon.stop().then(
        () => {
          clearTimeout(timer);
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
