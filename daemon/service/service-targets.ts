/** Picks the implementation for a service target. */
import type { CommandRunner } from './command-runner.js';
import { launchdManager } from './launchd-manager.js';
import type { ServiceSetup, ServiceTarget } from './service-files.js';
import type { ServiceManager } from './service-manager.js';
import { systemdManager } from './systemd-manager.js';

/** Returns the manager for `target`. */
export function serviceManagerFor(
  target: ServiceTarget,
  setup: ServiceSetup,
  runner: CommandRunner,
): ServiceManager {
  return target === 'systemd' ? systemdManager({ setup, runner }) : launchdManager({ setup, runner });
}
