/**
 * The proxy's login: when a credential needs one (never logged in, refresh token rejected, or a
 * step-up after a 403 `insufficient_scope`), start the daemon's interactive grant, show where to
 * go on stderr (stdout belongs to MCP), open the browser unless told not to, and wait for the
 * daemon to finish it. One login at a time per proxy: concurrent callers share it.
 */
import type {
  AuthorizationCodeLoginResponse,
  DeviceLoginResponse,
  FlowResponse,
  GrantType,
  LoginRequest,
} from '../../shared/protocol.js';
import { openBrowser } from '../cli/browser.js';
import { CliError } from '../cli/cli-error.js';
import { type CliContext, credentialRoute } from '../cli/context.js';
import { say } from '../cli/io.js';

const POLL_MS = 500;

/** What a login needs to know. */
export interface LoginFlowOptions {
  credential: string;
  grant: GrantType | null;
  browser: boolean;
  ctx: CliContext;
  /** How often to ask the daemon about the flow, in ms. */
  pollMs?: number;
}

/** Runs logins for one credential, at most one at a time. */
export class LoginFlow {
  readonly #options: LoginFlowOptions;
  #running: Promise<void> | undefined;

  constructor(options: LoginFlowOptions) {
    this.#options = options;
  }

  /** Logs in (for `scope` on top of the credential's own, when given); joins a login already running. */
  login(scope?: string): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.#run(scope).finally(() => {
        this.#running = undefined;
      });
    }
    return this.#running;
  }

  async #run(scope: string | undefined): Promise<void> {
    const { credential, ctx } = this.#options;
    const device = this.#options.grant === 'device_code';
    const request: LoginRequest = {
      flow: device ? 'device_code' : 'authorization_code',
      ...(scope !== undefined && scope !== '' ? { scope } : {}),
    };
    const started = await ctx.call<AuthorizationCodeLoginResponse | DeviceLoginResponse>(
      'POST',
      credentialRoute(credential, 'login'),
      request,
    );
    const why = scope === undefined ? 'needs a login' : `needs a login for scope "${scope}"`;
    if ('user_code' in started) {
      say(
        ctx.io,
        `keyward: "${credential}" ${why}: open the URL below and enter the code ${started.user_code}`,
      );
      say(ctx.io, started.verification_uri_complete ?? started.verification_uri);
    } else {
      say(ctx.io, `keyward: "${credential}" ${why}: open this URL to log in:`);
      say(ctx.io, started.authorization_url);
      if (this.#options.browser) await openBrowser(started.authorization_url);
    }
    for (;;) {
      const flow = await ctx.call<FlowResponse>('GET', `/flows/${encodeURIComponent(started.flow_id)}`);
      if (flow.state === 'complete') {
        say(ctx.io, `keyward: logged in "${credential}"`);
        return;
      }
      if (flow.state === 'failed') {
        throw new CliError(
          'LOGIN_REQUIRED',
          `the login of "${credential}" failed: ${flow.error?.message ?? 'no reason given'}; run: keyward login ${credential}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, this.#options.pollMs ?? POLL_MS));
    }
  }
}
