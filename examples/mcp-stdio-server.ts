/**
 * An MCP server (stdio) whose tool calls an upstream HTTP API with a token from keyward: the
 * server keeps no token, no refresh token and no client secret; it asks the keyward daemon for a
 * valid access token on every call, and on a 401 reports it and retries once (`kw.fetch`). The
 * daemon refreshes once however many calls run at once, and persists the rotated refresh token.
 *
 * Run it from an MCP host with:
 *   KEYWARD_CREDENTIAL  the keyward credential to use (default: example-api)
 *   API_URL             the upstream API's base URL; the tool calls GET <API_URL>/me
 *   KEYWARD_SOCKET      only when the daemon does not use its default socket
 *   KEYWARD_CLIENT_TOKEN only when access control is on (see `keyward connect`)
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { isKeywardError, KeywardClient } from 'keyward/client';

const credential = process.env.KEYWARD_CREDENTIAL ?? 'example-api';
const apiUrl = process.env.API_URL;
if (apiUrl === undefined) {
  process.stderr.write('set API_URL to the upstream API base URL\n');
  process.exit(2);
}

// One client for the process: it keeps a connection to the daemon's socket open between calls.
const kw = new KeywardClient();
const server = new McpServer({ name: 'keyward-example', version: '1.0.0' });

server.registerTool(
  'whoami',
  { description: 'Asks the upstream API who the current access token belongs to.' },
  async () => {
    try {
      const response = await kw.fetch(credential, new URL('me', `${apiUrl.replace(/\/$/, '')}/`));
      const body = await response.text();
      if (!response.ok) {
        return {
          isError: true,
          content: [{ type: 'text', text: `the API answered HTTP ${response.status}` }],
        };
      }
      return { content: [{ type: 'text', text: body }] };
    } catch (err) {
      // keyward's errors say what to do next (e.g. "run: keyward login example-api"): pass them on.
      const text = isKeywardError(err) ? `keyward: ${err.code}: ${err.message}` : String(err);
      return { isError: true, content: [{ type: 'text', text }] };
    }
  },
);

await server.connect(new StdioServerTransport());
