/**
 * What MCP servers do today without keyward, as the baseline of the coalescing benchmark: keep
 * the tokens in a JSON file, and when the access token has expired, refresh it straight at the
 * token endpoint with the stored refresh token and write the answer back. Two flavours: one
 * refresh per process shared by its callers (an in-process single flight, the best a per-process
 * client can do), or one refresh per caller (no coalescing at all).
 */
import fs from 'node:fs';

/** The token file: what a per-process client persists. */
export interface TokenFile {
  access_token: string;
  refresh_token: string;
  /** Epoch ms. */
  expires_at: number;
}

/** Where and how to refresh. */
export interface NaiveConfig {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  file: string;
}

/** Refreshes with `refreshToken`; returns the new tokens or throws with the OAuth error. */
export async function refreshAt(config: NaiveConfig, refreshToken: string): Promise<TokenFile> {
  const basic = Buffer.from(
    `${encodeURIComponent(config.clientId)}:${encodeURIComponent(config.clientSecret)}`,
  ).toString('base64');
  const sentAt = Date.now();
  const res = await fetch(config.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok || typeof body.access_token !== 'string') {
    throw new Error(String(body.error ?? `HTTP ${res.status}`));
  }
  return {
    access_token: body.access_token,
    refresh_token: typeof body.refresh_token === 'string' ? body.refresh_token : refreshToken,
    expires_at: sentAt + Number(body.expires_in ?? 0) * 1000,
  };
}

/** A per-process token source in the style of a typical MCP server's own OAuth client. */
export class NaiveRefresher {
  readonly #config: NaiveConfig;
  readonly #coalesce: boolean;
  #inflight: Promise<TokenFile> | undefined;

  constructor(config: NaiveConfig, options: { coalesce: boolean }) {
    this.#config = config;
    this.#coalesce = options.coalesce;
  }

  /** Returns a valid access token, refreshing when the file's one has expired. */
  async getToken(): Promise<string> {
    const current = JSON.parse(fs.readFileSync(this.#config.file, 'utf8')) as TokenFile;
    if (current.expires_at > Date.now() + 1000) return current.access_token;
    if (!this.#coalesce) return (await this.#refresh(current)).access_token;
    this.#inflight ??= this.#refresh(current).finally(() => {
      this.#inflight = undefined;
    });
    return (await this.#inflight).access_token;
  }

  async #refresh(current: TokenFile): Promise<TokenFile> {
    const fresh = await refreshAt(this.#config, current.refresh_token);
    fs.writeFileSync(this.#config.file, JSON.stringify(fresh));
    return fresh;
  }
}
