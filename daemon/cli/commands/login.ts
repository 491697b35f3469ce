/**
 * `keyward login <name> [--device] [--no-browser] [--scope "a b"]`: runs the interactive grant
 * through the daemon and waits until it completes, showing progress on stderr. `--scope` asks for
 * more than the credential's scope (a step-up after a 403 `insufficient_scope`).
 */
import type { Command } from 'commander';
import type {
  AuthorizationCodeLoginResponse,
  DeviceLoginResponse,
  FlowResponse,
  LoginRequest,
} from '../../../shared/protocol.js';
import { openBrowser } from '../browser.js';
import { CliError } from '../cli-error.js';
import { type CliContext, credentialRoute, requireName } from '../context.js';
import { printData, say } from '../io.js';

const POLL_MS = 500;

function progress(ctx: CliContext, text: string): void {
  // On a terminal, rewrite one status line; elsewhere stay quiet between state changes.
  if (ctx.io.stderr.isTTY) ctx.io.stderr.write(`\r\u001b[2K${text}`);
}

async function waitForFlow(
  ctx: CliContext,
  flowId: string,
  label: (elapsedS: number) => string,
): Promise<void> {
  const started = Date.now();
  for (;;) {
    const flow = await ctx.call<FlowResponse>('GET', `/flows/${encodeURIComponent(flowId)}`);
    if (flow.state === 'complete') {
      progress(ctx, '');
      return;
    }
    if (flow.state === 'failed') {
      progress(ctx, '');
      const code = flow.error?.code ?? 'LOGIN_REQUIRED';
      throw new CliError(
        code === 'UPSTREAM_UNAVAILABLE' || code === 'UPSTREAM_ERROR' ? code : 'LOGIN_REQUIRED',
        `login failed: ${flow.error?.message ?? 'the flow failed'}`,
      );
    }
    progress(ctx, label(Math.floor((Date.now() - started) / 1000)));
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Runs the login. */
export async function runLogin(
  rawName: string,
  opts: { device?: boolean; browser: boolean; scope?: string },
  ctx: CliContext,
): Promise<void> {
  const name = requireName(rawName);
  const request = (flow: LoginRequest['flow']): LoginRequest =>
    opts.scope !== undefined ? { flow, scope: opts.scope } : { flow };
  if (opts.device) {
    const flow = await ctx.call<DeviceLoginResponse>(
      'POST',
      credentialRoute(name, 'login'),
      request('device_code'),
    );
    say(ctx.io, `To log in "${name}", open ${flow.verification_uri} and enter the code: ${flow.user_code}`);
    if (flow.verification_uri_complete) printData(ctx.io, flow.verification_uri_complete);
    const expiresAt = Date.parse(flow.expires_at);
    await waitForFlow(ctx, flow.flow_id, () => {
      const left = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
      return `waiting for approval of code ${flow.user_code}... (expires in ${Math.floor(left / 60)}m${String(left % 60).padStart(2, '0')}s)`;
    });
  } else {
    const flow = await ctx.call<AuthorizationCodeLoginResponse>(
      'POST',
      credentialRoute(name, 'login'),
      request('authorization_code'),
    );
    if (opts.browser && (await openBrowser(flow.authorization_url))) {
      say(
        ctx.io,
        `Opened your browser to log in "${name}". If it did not open, visit:\n  ${flow.authorization_url}`,
      );
    } else {
      if (opts.browser) say(ctx.io, 'Could not open a browser; open this URL yourself:');
      else say(ctx.io, `Open this URL to log in "${name}":`);
      printData(ctx.io, flow.authorization_url);
    }
    await waitForFlow(ctx, flow.flow_id, (s) => `waiting for the browser to come back... (${s}s)`);
  }
  say(ctx.io, `logged in "${name}"; read a token with: keyward token ${name}`);
}

/** Registers the command. */
export function registerLogin(program: Command, context: () => CliContext): void {
  program
    .command('login')
    .description('log in an OAuth credential (authorization code + PKCE in the browser, or --device)')
    .argument('<name>', 'credential name')
    .option('--device', 'use the device authorization grant (enter a code on another device)')
    .option('--no-browser', 'print the authorization URL on stdout instead of opening a browser')
    .option('--scope <scopes>', 'also ask for these scopes (space-separated); kept once the login completes')
    .action((name: string, opts: { device?: boolean; browser: boolean; scope?: string }) =>
      runLogin(name, opts, context()),
    );
}
