/**
 * `keyward doctor`'s checks, in the order a user would fix things: the daemon, keyward's files and
 * their modes, the vault and its key store, the service, the clock, the credentials, the policy.
 * Every check yields one result; a failure carries the command or step that fixes it.
 */
import path from 'node:path';
import { KeywardError } from '../../client/errors.js';
import { requestJson } from '../../client/transport.js';
import { isNamedPipe, type KeywardPaths } from '../../shared/paths.js';
import type { CredentialStatus, HealthResponse, StatusResponse } from '../../shared/protocol.js';
import { VERSION } from '../../shared/version.js';
import { tryReadAdminToken } from '../admin-token.js';
import { describeStatic } from '../credential-service.js';
import type { ServiceManager, ServiceStatus } from '../service/service-manager.js';
import { Vault } from '../vault/vault.js';
import { type CheckResult, fail, ok, warn } from './check-result.js';
import { clockCheck, type DoctorClock, type RecordedTime } from './clock-check.js';
import { checkPrivatePath } from './file-checks.js';
import { readUserNamespaceBlockers, sandboxCheck } from './sandbox-check.js';
import { credentialChecks, keyStoreCheck, policyCheck } from './status-checks.js';

/** What doctor depends on; tests pass their own. */
export interface DoctorDeps {
  paths: KeywardPaths;
  /** This user's uid; undefined where there are no uids (Windows). */
  uid: number | undefined;
  /** The platform's service target, or undefined where keyward has none. */
  service: ServiceManager | undefined;
  clock: DoctorClock;
  /** How long to wait for the daemon's answers. */
  timeoutMs: number;
}

/** Every check's result; `ok` is false when any check failed. */
export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

type DaemonAnswer =
  | {
      reachable: true;
      health: HealthResponse;
      status: StatusResponse | undefined;
      statusError: KeywardError | undefined;
    }
  | { reachable: false; error: KeywardError };

async function askDaemon(deps: DoctorDeps): Promise<DaemonAnswer> {
  const options = { socketPath: deps.paths.socket, timeoutMs: deps.timeoutMs };
  let health: HealthResponse;
  try {
    health = await requestJson<HealthResponse>(options, 'GET', '/health');
  } catch (err) {
    return { reachable: false, error: asKeywardError(err) };
  }
  try {
    const bearer = tryReadAdminToken(deps.paths);
    const status = await requestJson<StatusResponse>({ ...options, bearer }, 'GET', '/status');
    return { reachable: true, health, status, statusError: undefined };
  } catch (err) {
    return { reachable: true, health, status: undefined, statusError: asKeywardError(err) };
  }
}

function asKeywardError(err: unknown): KeywardError {
  if (err instanceof KeywardError) return err;
  return new KeywardError('INTERNAL', err instanceof Error ? err.message : String(err));
}

function restartHint(service: ServiceStatus | undefined): string {
  if (service?.installed && service.target === 'systemd') return 'systemctl --user restart keyward.service';
  if (service?.installed && service.target === 'launchd')
    return 'launchctl kickstart -k gui/$(id -u)/dev.keyward.agent';
  return 'stop the daemon and start it again: keyward daemon';
}

function daemonCheck(
  answer: DaemonAnswer,
  deps: DoctorDeps,
  service: ServiceStatus | undefined,
): CheckResult {
  const socket = deps.paths.socket;
  if (!answer.reachable && answer.error.code === 'FORBIDDEN') {
    // The client refused to send anything through a socket others could have put there.
    return fail(
      'daemon',
      'daemon',
      `not asked: ${answer.error.message}`,
      'make the socket and its directory yours alone (see the socket check), then run keyward doctor again',
    );
  }
  if (!answer.reachable) {
    const why = answer.error.message.split(': is it running?')[0] ?? answer.error.message;
    const fix =
      service?.installed && service.enabled
        ? service.target === 'systemd'
          ? 'see why the service does not start: systemctl --user status keyward.socket keyward.service; journalctl --user -u keyward'
          : `see why the LaunchAgent does not start: launchctl print gui/$(id -u)/dev.keyward.agent; ${path.join('~', 'Library', 'Logs', 'keyward', 'keyward.log')}`
        : 'start it: keyward daemon (in the foreground), or run it as a service: keyward service install';
    return fail('daemon', 'daemon', `not reachable: ${why}`, fix);
  }
  if (answer.statusError) {
    return fail(
      'daemon',
      'daemon',
      `answers on ${socket}, but GET /v1/status failed: ${answer.statusError.code}: ${answer.statusError.message}`,
      answer.statusError.code === 'UNAUTHENTICATED' || answer.statusError.code === 'FORBIDDEN'
        ? `check that ${deps.paths.adminToken} is the token this daemon uses (${restartHint(service)})`
        : restartHint(service),
    );
  }
  const pid = answer.status ? `, pid ${answer.status.pid}` : '';
  if (answer.health.version !== VERSION) {
    return warn(
      'daemon',
      'daemon',
      `answers on ${socket}${pid}, but runs version ${answer.health.version} while this CLI is ${VERSION}`,
      `restart it on the new version: ${restartHint(service)}`,
    );
  }
  return ok('daemon', 'daemon', `answers on ${socket} (version ${answer.health.version}${pid})`);
}

function serviceCheck(status: ServiceStatus): CheckResult {
  const title = `service (${status.target})`;
  if (!status.installed) {
    return warn(
      'service',
      title,
      'not installed: the daemon runs only while you start it by hand',
      'keyward service install',
    );
  }
  if (!status.current) {
    return fail(
      'service',
      title,
      `installed, but ${status.files.map((f) => f.path).join(', ')} differ from what keyward would write now (node, keyward, KEYWARD_HOME or KEYWARD_SOCKET changed?)`,
      'keyward service install',
    );
  }
  if (status.enabled === null) {
    return warn(
      'service',
      title,
      `installed; could not ask ${status.manager ?? 'the service manager'}: ${status.detail ?? 'no answer'}`,
      'keyward service status',
    );
  }
  if (!status.enabled)
    return fail(
      'service',
      title,
      'installed but not enabled: it will not start at login',
      'keyward service install',
    );
  if (status.target === 'systemd' && status.listening === false) {
    return fail(
      'service',
      title,
      'enabled, but keyward.socket is not listening',
      'systemctl --user start keyward.socket; if it fails: journalctl --user -u keyward.socket',
    );
  }
  const running = status.running
    ? 'running'
    : status.target === 'systemd'
      ? 'starts on the first connection'
      : 'not running';
  return ok('service', title, `installed and enabled (${running})`);
}

function fileChecks(deps: DoctorDeps, vaultExists: boolean): CheckResult[] {
  const { paths, uid } = deps;
  const start = 'start the daemon (keyward daemon, or keyward service install): it creates it';
  const results = [
    checkPrivatePath({
      id: 'home',
      title: 'home',
      path: paths.home,
      kind: 'directory',
      missingFix: `keyward init, or ${start}`,
      uid,
    }),
  ];
  if (!isNamedPipe(paths.socket)) {
    const socketDir = path.dirname(paths.socket);
    results.push(
      checkPrivatePath({
        id: 'socket-dir',
        title: 'socket directory',
        path: socketDir,
        kind: 'directory',
        missingFix: start,
        uid,
      }),
      checkPrivatePath({
        id: 'socket',
        title: 'socket',
        path: paths.socket,
        kind: 'socket',
        missingFix: start,
        uid,
      }),
    );
  }
  results.push(
    checkPrivatePath({
      id: 'vault',
      title: 'vault',
      path: paths.vault,
      kind: 'file',
      missingFix: `keyward init, or ${start} with the default key store`,
      uid,
    }),
  );
  if (vaultExists) {
    results.push(
      checkPrivatePath({
        id: 'admin-token',
        title: 'admin token',
        path: paths.adminToken,
        kind: 'file',
        missingFix: `restart the daemon: it writes a new one`,
        uid,
      }),
    );
  }
  return results;
}

function keyFileCheck(deps: DoctorDeps): CheckResult {
  const result = checkPrivatePath({
    id: 'key-store',
    title: 'key store',
    path: deps.paths.keyFile,
    kind: 'file',
    missingFix: `restore ${deps.paths.keyFile} from a backup: without it the vault cannot be opened`,
    uid: deps.uid,
  });
  if (result.status !== 'ok') return result;
  return ok(
    'key-store',
    'key store',
    `file ${deps.paths.keyFile}, private; it is only as safe as that file (a passphrase or the keychain is stronger)`,
  );
}

function offlineVault(deps: DoctorDeps): { keyStore: string; credentials: CredentialStatus[] } | CheckResult {
  try {
    const meta = Vault.readMetadata(deps.paths);
    return { keyStore: meta.keyStore, credentials: meta.credentials.map(describeStatic) };
  } catch (err) {
    return fail(
      'key-store',
      'key store',
      `cannot read the vault: ${(err as Error).message}`,
      'restore vault.db from a backup, or move it away and run: keyward init',
    );
  }
}

function recordedTimes(credentials: CredentialStatus[]): RecordedTime[] {
  const times: RecordedTime[] = [];
  for (const c of credentials) {
    if (c.last_refresh_at) times.push({ what: `credential ${c.name} was refreshed`, at: c.last_refresh_at });
    if (c.last_error) times.push({ what: `credential ${c.name} last failed`, at: c.last_error.at });
  }
  return times;
}

/** Runs every check and returns the results in display order. */
export async function runDoctorChecks(deps: DoctorDeps): Promise<DoctorReport> {
  const [answer, service] = await Promise.all([askDaemon(deps), deps.service?.status()]);
  const checks: CheckResult[] = [daemonCheck(answer, deps, service)];
  const vaultExists = Vault.exists(deps.paths);
  checks.push(...fileChecks(deps, vaultExists));

  let credentials: CredentialStatus[] | undefined;
  const live = answer.reachable ? answer.status : undefined;
  if (live) {
    checks.push(
      live.vault.key_store === 'file' && !live.vault.locked ? keyFileCheck(deps) : keyStoreCheck(live.vault),
    );
    credentials = live.credentials;
  } else if (vaultExists) {
    const offline = offlineVault(deps);
    if ('status' in offline) checks.push(offline);
    else {
      credentials = offline.credentials;
      if (offline.keyStore === 'file') checks.push(keyFileCheck(deps));
      else if (offline.keyStore === 'passphrase') {
        checks.push(
          ok(
            'key-store',
            'key store',
            'passphrase (after the daemon starts: keyward unlock, or a service credential)',
          ),
        );
      } else checks.push(ok('key-store', 'key store', offline.keyStore));
    }
  }

  if (service) checks.push(serviceCheck(service));
  const sandbox = live ? sandboxCheck(live.sandbox, service, readUserNamespaceBlockers()) : undefined;
  if (sandbox) checks.push(sandbox);
  checks.push(await clockCheck(deps.clock, recordedTimes(credentials ?? [])));
  if (credentials) checks.push(...credentialChecks(credentials, { live: live !== undefined }));
  const policy = live ? policyCheck(live) : undefined;
  if (policy) checks.push(policy);
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

/** Formats one result as doctor's line: `ok`, `warn` or `FAIL`, what, and the fix. */
export function formatCheck(result: CheckResult): string {
  const label = result.status === 'fail' ? 'FAIL' : result.status === 'warn' ? 'warn' : 'ok  ';
  return `${label} ${result.title}: ${result.message}${result.fix ? `; fix: ${result.fix}` : ''}`;
}
