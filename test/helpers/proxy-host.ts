/**
 * An MCP host for proxy tests: the MCP SDK's `Client` over its `StdioClientTransport`, starting a
 * command the way Claude Desktop or VS Code start a stdio server (the SDK's minimal inherited
 * environment plus the entry's `env`), with stderr captured so tests can check what it shows.
 */
import { Client, type ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/** A running host and its server's stderr. */
export interface ProxyHost {
  client: Client;
  transport: StdioClientTransport;
  stderr(): string;
  close(): Promise<void>;
}

/** How the host starts the server: a config entry's `command`, `args` and `env`. */
export interface HostEntry {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** Starts `entry` as a stdio MCP server and connects a client to it. */
export async function startHost(
  entry: HostEntry,
  options: ClientOptions = {},
  onStderr?: (chunk: string) => void,
): Promise<ProxyHost> {
  const transport = new StdioClientTransport({
    command: entry.command,
    args: entry.args,
    env: entry.env ?? {},
    stderr: 'pipe',
    cwd: '/',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onStderr?.(chunk.toString());
  });
  const client = new Client({ name: 'proxy-test-host', version: '1.0.0' }, options);
  await client.connect(transport);
  return {
    client,
    transport,
    stderr: () => stderr,
    close: () => client.close(),
  };
}

/** Returns the environment a test entry needs to reach the test daemon (its home and socket). */
export function daemonEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return { KEYWARD_HOME: env.KEYWARD_HOME ?? '', KEYWARD_SOCKET: env.KEYWARD_SOCKET ?? '' };
}
