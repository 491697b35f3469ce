/**
 * A host that starts `keyward proxy` for a credential that still needs its login, as a user's MCP
 * host would the first time: the proxy shows the authorization URL on stderr, and the test's
 * "browser" (the authorization server fixture) walks it; the host's connect completes once the
 * proxy serves.
 */
import { type HostEntry, type ProxyHost, startHost } from './proxy-host.js';

/** A host whose proxy logged in, and the authorization URL it showed. */
export interface LoggedInHost {
  host: ProxyHost;
  authorizationUrl: URL;
}

/**
 * Starts `entry` with `--no-browser`, walks the first line of its stderr that starts with
 * `authorizePrefix` with `walk`, and resolves once the host is connected and the walk finished.
 */
export async function startHostWithLogin(
  entry: HostEntry,
  authorizePrefix: string,
  walk: (url: string) => Promise<unknown>,
): Promise<LoggedInHost> {
  let seen = '';
  let shown: URL | undefined;
  let walked: Promise<unknown> = Promise.resolve();
  const host = await startHost({ ...entry, args: [...entry.args, '--no-browser'] }, {}, (chunk) => {
    seen += chunk;
    if (shown !== undefined) return;
    const line = seen.split('\n').find((l) => l.startsWith(authorizePrefix));
    if (line === undefined || !seen.includes(`${line}\n`)) return;
    shown = new URL(line.trim());
    walked = walk(line.trim());
  });
  await walked;
  if (shown === undefined) {
    await host.close();
    throw new Error(`the proxy showed no URL starting with ${authorizePrefix}:\n${host.stderr()}`);
  }
  return { host, authorizationUrl: shown };
}
