/**
 * The launchd target: a LaunchAgent in `~/Library/LaunchAgents`, loaded into the user's GUI
 * domain with `launchctl bootstrap gui/<uid>`. `RunAtLoad` starts it at login; `KeepAlive`
 * restarts it after a crash. Its log goes to `~/Library/Logs/keyward/keyward.log`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from '../fs-safety.js';
import { LAUNCHD_LABEL, launchAgentPath, launchdLogFile, renderServiceFiles } from './service-files.js';
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

const LAUNCHCTL = 'launchctl';

/** Creates the launchd target. */
export function launchdManager({ setup, runner }: ManagerDeps): ServiceManager {
  const domain = `gui/${setup.uid}`;
  const service = `${domain}/${LAUNCHD_LABEL}`;
  const plist = launchAgentPath(setup);
  const files = () => renderServiceFiles('launchd', setup);
  // enable clears a `launchctl disable` left from before, which would make bootstrap fail.
  const enableCommands = (): string[][] => [
    [LAUNCHCTL, 'enable', service],
    [LAUNCHCTL, 'bootstrap', domain, plist],
  ];
  const isLoaded = async (tool: string): Promise<boolean> =>
    (await runner.run(tool, ['print', service])).code === 0;

  return {
    target: 'launchd',
    tool: LAUNCHCTL,
    files,
    enableCommands,

    async install(): Promise<ServiceReport> {
      const rendered = files();
      // launchd opens the log file but does not create its directory; logs name credentials.
      ensurePrivateDir(path.dirname(launchdLogFile(setup)));
      const changes = rendered.map((file) => ({ path: file.path, change: writeServiceFile(file) }));
      const tool = runner.which(LAUNCHCTL);
      const steps = enableCommands();
      if (!tool)
        return {
          target: 'launchd',
          files: changes,
          manager: undefined,
          ran: [],
          failed: undefined,
          pending: steps,
        };
      // bootstrap refuses a label that is already loaded: unload the old definition first.
      if (await isLoaded(tool)) steps.unshift([LAUNCHCTL, 'bootout', service]);
      return { target: 'launchd', files: changes, manager: tool, ...(await runSteps(runner, tool, steps)) };
    },

    async uninstall(): Promise<ServiceReport> {
      const tool = runner.which(LAUNCHCTL);
      const present = fs.existsSync(plist);
      const bootout = [[LAUNCHCTL, 'bootout', service]];
      let result: Pick<ServiceReport, 'ran' | 'failed' | 'pending'> = {
        ran: [],
        failed: undefined,
        pending: [],
      };
      if (tool && (await isLoaded(tool))) result = await runSteps(runner, tool, bootout);
      else if (!tool && present) result.pending = bootout;
      const change = removeServiceFile(plist) ? ('removed' as const) : ('absent' as const);
      return { target: 'launchd', files: [{ path: plist, change }], manager: tool, ...result };
    },

    async status(): Promise<ServiceStatus> {
      const statuses = fileStatuses(files());
      const base = {
        target: 'launchd' as const,
        installed: statuses.every((f) => f.present),
        current: statuses.every((f) => f.current),
        files: statuses,
      };
      const tool = runner.which(LAUNCHCTL);
      if (!tool)
        return { ...base, manager: null, enabled: null, running: null, detail: 'launchctl is not on PATH' };
      const printed = await runner.run(tool, ['print', service]);
      if (printed.code !== 0) return { ...base, manager: tool, enabled: false, running: false };
      const disabled = await runner.run(tool, ['print-disabled', domain]);
      // `"dev.keyward.agent" => disabled` (macOS 13+) or `=> true` (older releases).
      const marked = new RegExp(`"${LAUNCHD_LABEL.replaceAll('.', '\\.')}"\\s*=>\\s*(disabled|true)`).test(
        disabled.stdout,
      );
      return {
        ...base,
        manager: tool,
        enabled: !marked,
        running: /^\s*state = running\s*$/m.test(printed.stdout),
      };
    },
  };
}
