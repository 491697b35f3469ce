/**
 * Debian's oidc-agent (package `oidc-agent-cli`) set up against the oidc-provider fixture without
 * a human: a private HOME and socket, `oidc-agent -d`, then `oidc-gen` with the device flow, its
 * user code approved through the fixture. Used to time `oidc-token` beside `keyward token`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OidcProcess } from './oidc-process.js';

/** A running agent with one account loaded. */
export interface OidcAgent {
  version: string;
  account: string;
  /** The environment `oidc-token` needs (OIDC_SOCK). */
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Returns oidc-agent's version, or undefined when `oidc-token` is not installed. */
export function oidcAgentVersion(): string | undefined {
  const probe = spawnSync('oidc-agent', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  const tokenProbe = spawnSync('oidc-token', ['--version'], { encoding: 'utf8' });
  if (tokenProbe.error !== undefined) return undefined;
  return probe.stdout.trim() || probe.stderr.trim();
}

/** Starts an agent and creates the account `account` for the fixture's confidential client. */
export async function startOidcAgent(server: OidcProcess, account: string): Promise<OidcAgent> {
  const version = oidcAgentVersion();
  if (version === undefined) throw new Error('oidc-agent is not installed (apt-get install oidc-agent-cli)');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-bench-oidc-agent-'));
  fs.chmodSync(home, 0o700);
  const socket = path.join(home, 'agent.sock');
  // The encryption password of the account file; oidc-gen reads it with --pw-env.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    OIDC_SOCK: socket,
    OIDC_ENCRYPTION_PW: 'bench-only',
  };
  const agent: ChildProcess = spawn('oidc-agent', ['-d', '-a', socket, '--quiet'], { env, stdio: 'ignore' });
  const close = async () => {
    if (agent.exitCode === null) {
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(home, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 100 && !fs.existsSync(socket); i += 1) await sleep(20);
    if (!fs.existsSync(socket)) throw new Error('oidc-agent did not create its socket');
    const client = server.clients.confidential;
    const gen = spawn(
      'oidc-gen',
      [
        account,
        `--issuer=${server.issuer}`,
        `--client-id=${client.client_id}`,
        `--client-secret=${client.client_secret}`,
        '--scope=openid offline_access api:read',
        '--flow=device',
        '--pw-env',
        '--confirm-default',
        '--prompt=none',
        '--no-url-call',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const collect = (d: Buffer) => {
      output += d.toString();
    };
    gen.stdout?.on('data', collect);
    gen.stderr?.on('data', collect);
    const exited = new Promise<number | null>((resolve) => gen.once('exit', resolve));
    let approved = false;
    const deadline = Date.now() + 30_000;
    while (gen.exitCode === null && Date.now() < deadline) {
      const match = /user_code=([A-Z0-9-]+)|enter the code:?\s*([A-Z0-9-]+)/i.exec(output);
      const userCode = match?.[1] ?? match?.[2];
      if (userCode !== undefined && !approved) {
        approved = true;
        await server.approveDeviceCode(userCode);
      }
      await sleep(50);
    }
    if (gen.exitCode === null) gen.kill('SIGKILL');
    const code = await exited;
    if (code !== 0) throw new Error(`oidc-gen exited with ${code}: ${output.slice(-500)}`);
    return { version, account, env, close };
  } catch (err) {
    await close();
    throw err;
  }
}
