/**
 * `keyward add <name> --api-key` stores a static secret; `keyward add <name> --oauth ...` and
 * `keyward add <name> --mcp-server <url>` register an OAuth credential. Secrets are read from stdin
 * or a no-echo prompt, never from argv.
 */
import { type Command, Option } from 'commander';
import type { AddCredentialRequest, CredentialStatus, GrantType } from '../../../shared/protocol.js';
import { GRANT_TYPES } from '../../../shared/protocol.js';
import { CliError } from '../cli-error.js';
import { type CliContext, requireName } from '../context.js';
import { printData, readSecretInput, say } from '../io.js';

/** Options of `keyward add` as commander parses them. */
export interface AddOptions {
  apiKey?: boolean;
  tokenType?: string;
  oauth?: boolean;
  mcpServer?: string;
  issuer?: string;
  provider?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  deviceAuthorizationUrl?: string;
  revocationUrl?: string;
  clientId?: string;
  clientSecretStdin?: boolean;
  scope?: string;
  /** A URI, or false with `--no-resource` (commander's negation of `--resource`). */
  resource?: string | false;
  grant?: GrantType;
  redirectPort?: string;
  json?: boolean;
}

function usage(message: string): CliError {
  return new CliError('INVALID_REQUEST', `${message} (see: keyward add --help)`);
}

/** Builds the request for an OAuth credential from the flags, checking that they fit together. */
export function oauthRequest(name: string, opts: AddOptions): AddCredentialRequest {
  const sources = [opts.issuer, opts.provider, opts.authorizationUrl ?? opts.tokenUrl, opts.mcpServer].filter(
    (v) => v !== undefined,
  );
  if (sources.length === 0) {
    throw usage(
      'an OAuth credential needs a source: --issuer URL, --provider NAME, --authorization-url URL --token-url URL, or --mcp-server URL',
    );
  }
  if (sources.length > 1)
    throw usage('give one source only: --issuer, --provider, explicit endpoints, or --mcp-server');
  if (
    (opts.authorizationUrl !== undefined || opts.deviceAuthorizationUrl !== undefined) &&
    opts.tokenUrl === undefined &&
    opts.issuer === undefined &&
    opts.provider === undefined &&
    opts.mcpServer === undefined
  ) {
    throw usage('explicit endpoints need --token-url too');
  }
  if (opts.clientId === undefined && opts.mcpServer === undefined) {
    throw usage('--client-id is required (only --mcp-server can register a client dynamically)');
  }
  const req: AddCredentialRequest = { name, kind: 'oauth' };
  const fields: Array<[keyof typeof req & string, string | undefined]> = [
    ['client_id', opts.clientId],
    ['scope', opts.scope],
    ['resource', opts.resource === false ? undefined : opts.resource],
    ['grant', opts.grant],
    ['issuer', opts.issuer],
    ['provider', opts.provider],
    ['authorization_url', opts.authorizationUrl],
    ['token_url', opts.tokenUrl],
    ['device_authorization_url', opts.deviceAuthorizationUrl],
    ['revocation_url', opts.revocationUrl],
    ['mcp_server', opts.mcpServer],
  ];
  for (const [key, value] of fields)
    if (value !== undefined) (req as unknown as Record<string, string>)[key] = value;
  if (opts.redirectPort !== undefined) {
    const port = Number(opts.redirectPort);
    if (!/^\d{1,5}$/.test(opts.redirectPort) || port < 1024 || port > 65535) {
      throw usage('--redirect-port must be a port number from 1024 to 65535');
    }
    req.redirect_port = port;
  }
  if (opts.resource === false) req.no_resource = true;
  return req;
}

/** Adds the credential through the daemon. */
export async function runAdd(rawName: string, opts: AddOptions, ctx: CliContext): Promise<void> {
  const name = requireName(rawName);
  const isOAuth = opts.oauth === true || opts.mcpServer !== undefined;
  if (opts.apiKey && isOAuth) throw usage('choose one of --api-key and --oauth');
  if (!opts.apiKey && !isOAuth) throw usage('say what to add: --api-key, --oauth ... or --mcp-server URL');

  let request: AddCredentialRequest;
  if (opts.apiKey) {
    const secret = await readSecretInput(ctx.io, `API key for ${name}: `, 'API key');
    request = { name, kind: 'api_key', secret, ...(opts.tokenType ? { token_type: opts.tokenType } : {}) };
  } else {
    request = oauthRequest(name, opts);
    if (opts.clientSecretStdin) {
      (request as { client_secret?: string }).client_secret = await readSecretInput(
        ctx.io,
        `client secret for ${name}: `,
        'client secret',
      );
    }
  }
  const entry = await ctx.call<CredentialStatus>('POST', '/credentials', request);
  if (opts.json) printData(ctx.io, JSON.stringify(entry));
  if (entry.kind === 'oauth' && entry.state === 'needs_login') {
    say(
      ctx.io,
      `added "${name}"; log in next: keyward login ${name}${entry.grant === 'device_code' ? ' --device' : ''}`,
    );
  } else {
    say(ctx.io, `added "${name}"; read it with: keyward token ${name}`);
  }
}

/** Registers the command. */
export function registerAdd(program: Command, context: () => CliContext): void {
  program
    .command('add')
    .description(
      'store a credential: a static API key (--api-key) or an OAuth registration (--oauth, --mcp-server)',
    )
    .argument('<name>', 'credential name: a-z, 0-9, ".", "_", "-"; up to 64 characters')
    .option('--api-key', 'store a static secret read from stdin or a no-echo prompt')
    .option('--token-type <type>', 'token type sent with an API key (default: Bearer)')
    .option(
      '--oauth',
      'register an OAuth credential (give a source: --issuer, --provider or explicit endpoints)',
    )
    .option('--mcp-server <url>', 'an OAuth credential for a remote MCP server, discovered from its metadata')
    .option('--issuer <url>', 'authorization server issuer (RFC 8414 / OpenID discovery)')
    .option(
      '--provider <name>',
      'a built-in provider preset (github, google, microsoft, slack, gitlab, atlassian, notion)',
    )
    .option('--authorization-url <url>', 'authorization endpoint')
    .option('--token-url <url>', 'token endpoint')
    .option('--device-authorization-url <url>', 'device authorization endpoint (RFC 8628)')
    .option('--revocation-url <url>', 'revocation endpoint (RFC 7009)')
    .option(
      '--client-id <id>',
      'OAuth client ID; an https URL is a Client ID Metadata Document (no registration)',
    )
    .option('--client-secret-stdin', 'read the client secret from stdin (or a no-echo prompt)')
    .option('--scope <scopes>', 'space-separated scopes, e.g. "repo read:org"')
    .option('--resource <uri>', 'resource indicator (RFC 8707) sent in authorization and token requests')
    .addOption(
      new Option(
        '--no-resource',
        "send no RFC 8707 resource, not even the MCP server's (Entra ID v2 endpoints refuse it)",
      ).default(undefined),
    )
    .option(
      '--redirect-port <port>',
      'loopback port of the redirect URI http://127.0.0.1:<port>/callback: the port to register (default: a free one, chosen now), or the one a pre-registered client has',
    )
    .addOption(new Option('--grant <grant>', 'OAuth grant').choices([...GRANT_TYPES]))
    .option('--json', 'print the new credential status entry as JSON on stdout')
    .action((name: string, opts: AddOptions) => runAdd(name, opts, context()));
}
