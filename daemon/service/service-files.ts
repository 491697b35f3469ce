/**
 * What `keyward service install` writes: the systemd user units or the LaunchAgent plist, filled
 * in from the package's templates with this machine's node and CLI paths and, when they differ
 * from what the service manager would resolve by itself, KEYWARD_HOME and KEYWARD_SOCKET.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KeywardPaths, resolveHome } from '../../shared/paths.js';
import {
  fillTemplate,
  plistEnvironment,
  systemdEnvironment,
  systemdLineValue,
  systemdProgram,
  systemdWord,
  TemplateError,
  xmlText,
} from './template.js';

/** The service managers keyward installs into. */
export type ServiceTarget = 'systemd' | 'launchd';

/** The targets, as a list for option validation. */
export const SERVICE_TARGETS: readonly ServiceTarget[] = ['systemd', 'launchd'];

/** The systemd unit names. */
export const SYSTEMD_SERVICE_UNIT = 'keyward.service';
export const SYSTEMD_SOCKET_UNIT = 'keyward.socket';

/** The LaunchAgent's label (reverse DNS), also its plist's file name. */
export const LAUNCHD_LABEL = 'dev.keyward.agent';

/** Linux `sun_path` holds 108 bytes including the terminating NUL (unix(7)). */
const LINUX_SUN_PATH_MAX = 108;

/** Everything the rendered files depend on; tests inject their own. */
export interface ServiceSetup {
  env: NodeJS.ProcessEnv;
  homedir: string;
  uid: number;
  platform: NodeJS.Platform;
  /** The node binary the service runs. */
  nodePath: string;
  /** The built CLI entry the service runs with `daemon`. */
  cliPath: string;
  /** The package root holding `systemd/` and `launchd/`. */
  packageRoot: string;
  /** keyward's resolved paths, as the installing CLI sees them. */
  paths: KeywardPaths;
}

/** One file of the service. */
export interface ServiceFile {
  path: string;
  content: string;
}

/** Returns the package root (this file is `dist/daemon/service/service-files.js`). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

/** Builds the setup for this process. */
export function currentServiceSetup(paths: KeywardPaths, env: NodeJS.ProcessEnv = process.env): ServiceSetup {
  const root = packageRoot();
  return {
    env,
    homedir: os.homedir(),
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    platform: process.platform,
    nodePath: process.execPath,
    cliPath: path.join(root, 'dist', 'daemon', 'cli', 'main.js'),
    packageRoot: root,
    paths,
  };
}

/** Returns the platform's service manager, or undefined where keyward has none. */
export function defaultServiceTarget(platform: NodeJS.Platform): ServiceTarget | undefined {
  if (platform === 'linux') return 'systemd';
  if (platform === 'darwin') return 'launchd';
  return undefined;
}

/** Returns the systemd user unit directory: `$XDG_CONFIG_HOME/systemd/user`, default `~/.config/systemd/user`. */
export function systemdUnitDir(setup: ServiceSetup): string {
  const configHome = setup.env.XDG_CONFIG_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = configHome && path.isAbsolute(configHome) ? configHome : path.join(setup.homedir, '.config');
  return path.join(base, 'systemd', 'user');
}

/** Returns the LaunchAgent plist path. */
export function launchAgentPath(setup: ServiceSetup): string {
  return path.join(setup.homedir, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
}

/** Returns the file launchd sends the daemon's stdout and stderr to. */
export function launchdLogFile(setup: ServiceSetup): string {
  return path.join(setup.homedir, 'Library', 'Logs', 'keyward', 'keyward.log');
}

/** Returns the paths of the files a target installs, without rendering them. */
export function serviceFilePaths(target: ServiceTarget, setup: ServiceSetup): string[] {
  if (target === 'launchd') return [launchAgentPath(setup)];
  const dir = systemdUnitDir(setup);
  return [path.join(dir, SYSTEMD_SERVICE_UNIT), path.join(dir, SYSTEMD_SOCKET_UNIT)];
}

function readTemplate(setup: ServiceSetup, ...parts: string[]): string {
  return fs.readFileSync(path.join(setup.packageRoot, ...parts), 'utf8');
}

/**
 * Where the systemd socket unit listens, and the variables the daemon needs to agree with the
 * CLI. The user manager sets XDG_RUNTIME_DIR and nothing else of ours, so KEYWARD_HOME and
 * KEYWARD_SOCKET are written only when the CLI's resolution differs from what the daemon would
 * compute there (set explicitly, or derived from XDG_DATA_HOME or a missing XDG_RUNTIME_DIR).
 */
function systemdPlacement(setup: ServiceSetup): { listen: string; env: Record<string, string> } {
  const env: Record<string, string> = {};
  const managerHome = resolveHome({
    env: {},
    platform: 'linux',
    homedir: setup.homedir,
    uid: setup.uid,
    username: '',
    tmpdir: os.tmpdir(),
  });
  if (setup.paths.home !== managerHome) env.KEYWARD_HOME = setup.paths.home;
  const runtime = setup.env.XDG_RUNTIME_DIR;
  if (runtime && setup.paths.socket === path.join(runtime, 'keyward', 'keyward.sock')) {
    return { listen: '%t/keyward/keyward.sock', env };
  }
  if (!path.isAbsolute(setup.paths.socket)) {
    throw new TemplateError(
      `the socket path ${setup.paths.socket} is not absolute: set KEYWARD_SOCKET to a full path`,
    );
  }
  if (Buffer.byteLength(setup.paths.socket) >= LINUX_SUN_PATH_MAX) {
    throw new TemplateError(
      `the socket path ${setup.paths.socket} is too long for a Unix socket (${LINUX_SUN_PATH_MAX - 1} bytes at most): set KEYWARD_SOCKET to a shorter path`,
    );
  }
  env.KEYWARD_SOCKET = setup.paths.socket;
  return { listen: systemdLineValue(setup.paths.socket, 'the socket path'), env };
}

function renderSystemd(setup: ServiceSetup): ServiceFile[] {
  const [servicePath, socketPath] = serviceFilePaths('systemd', setup) as [string, string];
  const placement = systemdPlacement(setup);
  const service = fillTemplate(readTemplate(setup, 'systemd', SYSTEMD_SERVICE_UNIT), {
    NODE: systemdProgram(setup.nodePath, 'the node path'),
    CLI: systemdWord(setup.cliPath, 'the keyward CLI path', { commandArgument: true }),
    ENVIRONMENT: systemdEnvironment(placement.env),
    // "-": a missing home does not fail the namespace setup; the daemon then says what is wrong.
    READ_WRITE_HOME: systemdWord(`-${setup.paths.home}`, 'KEYWARD_HOME'),
  });
  const socket = fillTemplate(readTemplate(setup, 'systemd', SYSTEMD_SOCKET_UNIT), {
    SOCKET: placement.listen,
  });
  return [
    { path: servicePath, content: service },
    { path: socketPath, content: socket },
  ];
}

function renderLaunchd(setup: ServiceSetup): ServiceFile[] {
  // launchd passes no XDG variables; macOS resolution has no XDG inputs, so only explicit ones matter.
  const env: Record<string, string> = {};
  if (setup.env.KEYWARD_HOME) env.KEYWARD_HOME = setup.paths.home;
  if (setup.env.KEYWARD_SOCKET) env.KEYWARD_SOCKET = setup.paths.socket;
  const content = fillTemplate(readTemplate(setup, 'launchd', `${LAUNCHD_LABEL}.plist`), {
    LABEL: xmlText(LAUNCHD_LABEL, 'the label'),
    NODE: xmlText(setup.nodePath, 'the node path'),
    CLI: xmlText(setup.cliPath, 'the keyward CLI path'),
    ENVIRONMENT: plistEnvironment(env),
    LOG_FILE: xmlText(launchdLogFile(setup), 'the log file'),
  });
  return [{ path: launchAgentPath(setup), content }];
}

/** Renders the files a target installs, with their absolute paths. */
export function renderServiceFiles(target: ServiceTarget, setup: ServiceSetup): ServiceFile[] {
  return target === 'systemd' ? renderSystemd(setup) : renderLaunchd(setup);
}
