/**
 * The systemd target: `keyward.socket` + `keyward.service` in the user's unit directory, enabled
 * with `systemctl --user`. Only the socket is enabled: systemd listens from login on and starts
 * the daemon on the first connection (socket activation, sd_listen_fds(3)).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from '../fs-safety.js';
import {
  renderServiceFiles,
  SYSTEMD_SERVICE_UNIT,
  SYSTEMD_SOCKET_UNIT,
  serviceFilePaths,
} from './service-files.js';
import {
  fileStatuses,
  type ManagerDeps,
  removeServiceFile,
  runSteps,
  type ServiceManager,
  type ServiceReport,
  type ServiceStatus,
  writeServiceFile,
} from './service-manager.js';

const SYSTEMCTL = 'systemctl';

/** `systemctl is-enabled` answers that mean "starts at login" (systemctl(1)). */
const ENABLED_STATES = new Set(['enabled', 'enabled-runtime']);
const KNOWN_ENABLEMENT = new Set([
  'enabled',
  'enabled-runtime',
  'linked',
  'linked-runtime',
  'alias',
  'masked',
  'masked-runtime',
  'static',
  'indirect',
  'disabled',
  'generated',
  'transient',
  'bad',
  'not-found',
]);
const KNOWN_ACTIVITY = new Set([
  'active',
  'reloading',
  'inactive',
  'failed',
  'activating',
  'deactivating',
  'maintenance',
  'refreshing',
]);

/** Creates the systemd target. */
export function systemdManager({ setup, runner }: ManagerDeps): ServiceManager {
  const files = () => renderServiceFiles('systemd', setup);
  const user = (...args: string[]): string[] => [SYSTEMCTL, '--user', ...args];
  const enableCommands = (): string[][] => [
    user('daemon-reload'),
    user('enable', '--now', SYSTEMD_SOCKET_UNIT),
  ];

  return {
    target: 'systemd',
    tool: SYSTEMCTL,
    files,
    enableCommands,

    async install(): Promise<ServiceReport> {
      const rendered = files();
      // ProtectSystem=strict leaves only ReadWritePaths= writable: the home must exist first.
      ensurePrivateDir(setup.paths.home);
      const changes = rendered.map((file) => ({ path: file.path, change: writeServiceFile(file) }));
      const steps = enableCommands();
      // A running daemon keeps its old command line until restarted; try-restart leaves a stopped one alone.
      if (changes.some((c) => c.change === 'updated')) steps.push(user('try-restart', SYSTEMD_SERVICE_UNIT));
      const tool = runner.which(SYSTEMCTL);
      if (!tool)
        return {
          target: 'systemd',
          files: changes,
          manager: undefined,
          ran: [],
          failed: undefined,
          pending: steps,
        };
      return { target: 'systemd', files: changes, manager: tool, ...(await runSteps(runner, tool, steps)) };
    },

    async uninstall(): Promise<ServiceReport> {
      const paths = serviceFilePaths('systemd', setup);
      // What `systemctl enable` made; removed by hand too, in case systemctl cannot do it.
      const wants = path.join(path.dirname(paths[0] ?? ''), 'sockets.target.wants', SYSTEMD_SOCKET_UNIT);
      const linked = fs.lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink() === true;
      const present = linked || paths.some((p) => fs.existsSync(p));
      const tool = runner.which(SYSTEMCTL);
      const files = (): ServiceReport['files'] =>
        paths.map((p) => ({ path: p, change: removeServiceFile(p) ? 'removed' : 'absent' }));
      if (!present || !tool) {
        // Without systemctl there is no user manager running these units: removing the files is all.
        if (linked) removeServiceFile(wants);
        return { target: 'systemd', files: files(), manager: tool, ran: [], failed: undefined, pending: [] };
      }
      // Stop and disable while systemd still knows the units, then make it forget them.
      const stopped = await runSteps(
        runner,
        tool,
        [user('disable', '--now', SYSTEMD_SOCKET_UNIT), user('stop', SYSTEMD_SERVICE_UNIT)],
        { keepGoing: true },
      );
      const removed = files();
      if (fs.lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink()) removeServiceFile(wants);
      const reloaded = await runSteps(runner, tool, [user('daemon-reload')]);
      const failed = stopped.failed ?? reloaded.failed;
      return {
        target: 'systemd',
        files: removed,
        manager: tool,
        ran: [...stopped.ran, ...reloaded.ran],
        failed,
        // Once the files are gone, only stopping what is still loaded and reloading make sense.
        pending: failed
          ? [user('stop', SYSTEMD_SOCKET_UNIT, SYSTEMD_SERVICE_UNIT), user('daemon-reload')]
          : [],
      };
    },

    async status(): Promise<ServiceStatus> {
      const statuses = fileStatuses(files());
      const base = {
        target: 'systemd' as const,
        installed: statuses.every((f) => f.present),
        current: statuses.every((f) => f.current),
        files: statuses,
      };
      const tool = runner.which(SYSTEMCTL);
      if (!tool) {
        return {
          ...base,
          manager: null,
          enabled: null,
          running: null,
          listening: null,
          detail: 'systemctl is not on PATH',
        };
      }
      const enabledAnswer = await runner.run(tool, ['--user', 'is-enabled', SYSTEMD_SOCKET_UNIT]);
      const state = enabledAnswer.stdout.trim().split('\n')[0] ?? '';
      const activeAnswer = await runner.run(tool, [
        '--user',
        'is-active',
        SYSTEMD_SOCKET_UNIT,
        SYSTEMD_SERVICE_UNIT,
      ]);
      const [socketState = '', serviceState = ''] = activeAnswer.stdout.trim().split('\n');
      const knownActivity = KNOWN_ACTIVITY.has(socketState) && KNOWN_ACTIVITY.has(serviceState);
      const reasons = [
        KNOWN_ENABLEMENT.has(state) ? '' : enabledAnswer.stderr.trim(),
        knownActivity ? '' : activeAnswer.stderr.trim(),
      ].filter((r) => r !== '');
      return {
        ...base,
        manager: tool,
        enabled: KNOWN_ENABLEMENT.has(state) ? ENABLED_STATES.has(state) : null,
        running: knownActivity ? serviceState === 'active' : null,
        listening: knownActivity ? socketState === 'active' : null,
        ...(reasons.length > 0 ? { detail: `systemctl --user: ${reasons[0]}` } : {}),
      };
    },
  };
}
