/**
 * What every command gets: resolved paths, its streams, and a way to call the daemon as admin.
 * Commands take a context instead of reaching for globals, so tests can run them in a temp home.
 */
import { KeywardError } from '../../client/errors.js';
import { requestJson } from '../../client/transport.js';
import { isValidName, NAME_RULE } from '../../shared/names.js';
import { type KeywardPaths, resolvePaths } from '../../shared/paths.js';
import { tryReadAdminToken } from '../admin-token.js';
import { CliError } from './cli-error.js';
import { type Io, processIo } from './io.js';

/** A command's dependencies. */
export interface CliContext {
  paths: KeywardPaths;
  io: Io;
  /** Calls the daemon with the admin token. */
  call<T>(method: string, route: string, body?: unknown): Promise<T>;
}

/** Builds the context from the environment. */
export function createContext(overrides: Partial<Pick<CliContext, 'paths' | 'io'>> = {}): CliContext {
  const paths = overrides.paths ?? resolvePaths();
  const io = overrides.io ?? processIo();
  return {
    paths,
    io,
    call: async <T>(method: string, route: string, body?: unknown): Promise<T> => {
      try {
        return await requestJson<T>(
          { socketPath: paths.socket, bearer: tryReadAdminToken(paths), timeoutMs: 120_000 },
          method,
          route,
          body,
        );
      } catch (err) {
        if (err instanceof KeywardError) throw new CliError(err.code, err.message);
        throw err;
      }
    },
  };
}

/** Checks a credential name given on the command line. */
export function requireName(name: string, what = 'credential'): string {
  if (!isValidName(name)) throw new CliError('INVALID_REQUEST', `bad ${what} name "${name}": ${NAME_RULE}`);
  return name;
}

/** Returns the `/credentials/<name>` route. */
export function credentialRoute(name: string, action?: string): string {
  return `/credentials/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
}
