/**
 * OAuth through the CLI, for daemon-level tests: register a credential against the oidc-provider
 * fixture with `keyward add --oauth`, and run `keyward login` headlessly (the CLI prints the
 * authorization URL with `--no-browser`, or the device code with `--device`; the fixture plays
 * the user).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { OidcServer } from '../fixtures/oidc-server.js';
import { CLI, type CliResult, runCli, type TestHome } from './daemon-process.js';

/** Options of `addOAuthCredential`. */
export interface AddOAuthOptions {
  /** Which fixture client to use (default `confidential`, whose secret is piped on stdin). */
  client?: 'confidential' | 'public';
  grant?: 'authorization_code' | 'device_code' | 'client_credentials';
  /** Default `openid api:read`. */
  scope?: string;
}

/** Runs `keyward add <name> --oauth --issuer ...` and asserts that it succeeded. */
export async function addOAuthCredential(
  home: TestHome,
  server: OidcServer,
  name: string,
  options: AddOAuthOptions = {},
): Promise<CliResult> {
  const client = options.client === 'public' ? server.clients.public : server.clients.confidential;
  const args = ['add', name, '--oauth', '--issuer', server.issuer, '--client-id', client.client_id];
  if (client.client_secret !== undefined) args.push('--client-secret-stdin');
  if (options.grant) args.push('--grant', options.grant);
  args.push('--scope', options.scope ?? 'openid api:read');
  const result = await runCli(home, args, { input: client.client_secret ?? '' });
  assert.equal(result.code, 0, result.stderr);
  return result;
}

/** Plays the user at an authorization server: the oidc fixture, or any other that can walk a URL. */
export interface AuthorizationWalker {
  completeAuthorization(url: string, options?: { deny?: boolean }): Promise<unknown>;
  approveDeviceCode?(userCode: string): Promise<void>;
  denyDeviceCode?(userCode: string): Promise<void>;
}

/** What a headless login produced. */
export interface HeadlessLogin extends CliResult {
  /** The authorization URL (or device user code) the CLI showed. */
  prompt: string | undefined;
  /** The authorization URL, for the browser flow. */
  url: string | undefined;
}

/**
 * Runs `keyward login <name> [...args]` and completes whatever it asks for with the fixture:
 * the authorization URL printed with `--no-browser`, or the device code with `device`. With
 * `deny` the fixture's user refuses.
 */
export async function loginHeadless(
  home: TestHome,
  server: AuthorizationWalker,
  name: string,
  options: { device?: boolean; deny?: boolean; args?: string[] } = {},
): Promise<HeadlessLogin> {
  const args = ['login', name, options.device ? '--device' : '--no-browser', ...(options.args ?? [])];
  const child = spawn(process.execPath, [CLI, ...args], { env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let prompt: string | undefined;
  let acted: Promise<unknown> = Promise.resolve();
  const act = (): void => {
    if (prompt !== undefined) return;
    prompt = options.device
      ? /enter the code: (\S+)/.exec(stderr)?.[1]
      : stdout
          .split('\n')
          .find((l) => l.startsWith('http'))
          ?.trim();
    if (prompt === undefined) return;
    const device = options.deny ? server.denyDeviceCode : server.approveDeviceCode;
    const step = options.device
      ? (device?.call(server, prompt) ?? Promise.reject(new Error('this server has no device flow')))
      : server.completeAuthorization(prompt, { deny: options.deny === true });
    acted = step.catch((err: unknown) => {
      stderr += `\n[fixture] ${(err as Error).message}`;
    });
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    act();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    act();
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  await acted;
  return { code, stdout, stderr, prompt, url: options.device ? undefined : prompt };
}
