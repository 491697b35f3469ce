/**
 * What the routes delegate to: adding, removing and describing credentials, and serving tokens.
 * Static API keys are served here; OAuth credentials go to the OAuth engine, which owns refresh.
 */
import type {
  AddCredentialRequest,
  AddOAuthRequest,
  AuthorizationCodeLoginResponse,
  CredentialStatus,
  DeviceLoginResponse,
  FlowResponse,
  RemoveCredentialResponse,
  TokenResponse,
} from '../shared/protocol.js';
import { ApiError } from './api-error.js';
import type { Logger } from './log.js';
import { Secret } from './secret.js';
import type { CredentialRecord, Vault } from './vault/vault.js';

/** What the OAuth engine offers the credential service (daemon/oauth/oauth-service.ts implements it). */
export interface OAuthEngine {
  prepareCredential(
    req: AddOAuthRequest,
    clientSecret?: Secret,
  ): Promise<{
    config: Record<string, unknown>;
    state: Record<string, unknown>;
    secrets: Record<string, Secret>;
  }>;
  getToken(name: string, minTtlS: number): Promise<TokenResponse>;
  invalidate(name: string, accessToken: string): Promise<TokenResponse>;
  startLogin(
    name: string,
    flow: 'authorization_code' | 'device_code',
    extraScope?: string,
  ): Promise<AuthorizationCodeLoginResponse | DeviceLoginResponse>;
  flowStatus(flowId: string): FlowResponse;
  revoke(name: string): Promise<boolean>;
  describe(
    record: CredentialRecord,
  ): Pick<
    CredentialStatus,
    'state' | 'grant' | 'issuer' | 'scope' | 'expires_at' | 'last_refresh_at' | 'last_error'
  >;
  close(): Promise<void>;
}

/** The vault field that holds a static API key. */
const API_KEY_FIELD = 'api_key';

/** Describes a credential from its clear metadata alone (no key needed). */
export function describeStatic(record: CredentialRecord): CredentialStatus {
  const state = record.state;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const config = record.config;
  return {
    name: record.name,
    kind: record.kind,
    state:
      state.state === 'needs_login' || state.state === 'error'
        ? state.state
        : record.kind === 'api_key'
          ? 'ready'
          : 'needs_login',
    grant: record.kind === 'oauth' ? ((str(config.grant) as CredentialStatus['grant']) ?? null) : null,
    issuer: str(config.issuer),
    scope: str(state.scope) ?? str(config.scope),
    expires_at: str(state.expires_at),
    last_refresh_at: str(state.last_refresh_at),
    last_error: (state.last_error as CredentialStatus['last_error']) ?? null,
    // `keyward proxy <name>` finds the server here; clear, public metadata (no secret).
    ...(typeof config.mcp_server === 'string' ? { mcp_server: config.mcp_server } : {}),
  };
}

/** Adds, removes, describes credentials and serves their tokens. */
export class CredentialService {
  readonly #vault: Vault;
  readonly #oauth: OAuthEngine;
  readonly #log: Logger;

  constructor(deps: { vault: Vault; oauth: OAuthEngine; log: Logger }) {
    this.#vault = deps.vault;
    this.#oauth = deps.oauth;
    this.#log = deps.log;
  }

  /** Stores a new credential; the secret in the request is sealed and the request's copy dropped. */
  async add(req: AddCredentialRequest): Promise<CredentialStatus> {
    if (this.#vault.getCredential(req.name)) throw alreadyExists(req.name);
    let record: CredentialRecord;
    if (req.kind === 'api_key') {
      const secret = Secret.fromString(req.secret);
      record = this.#vault.insertCredential({
        name: req.name,
        kind: 'api_key',
        config: { token_type: req.token_type ?? 'Bearer' },
        state: {},
        secrets: { [API_KEY_FIELD]: secret },
      });
      secret.wipe();
    } else {
      const clientSecret = req.client_secret === undefined ? undefined : Secret.fromString(req.client_secret);
      const prepared = await this.#oauth.prepareCredential(
        { ...req, client_secret: undefined },
        clientSecret,
      );
      record = this.#vault.insertCredential({ name: req.name, kind: 'oauth', ...prepared });
    }
    this.#log.info({ credential: req.name, kind: req.kind }, 'credential added');
    return this.describe(record);
  }

  /** Deletes a credential, revoking OAuth tokens first when asked and possible. */
  async remove(name: string, revoke: boolean): Promise<RemoveCredentialResponse> {
    const record = this.#require(name);
    let revoked = false;
    if (record.kind === 'oauth' && revoke) {
      try {
        revoked = await this.#oauth.revoke(name);
      } catch (err) {
        // Revocation is best effort: the user asked to remove the credential, and a dead
        // authorization server must not keep its tokens in the vault.
        this.#log.warn({ credential: name, err }, 'revocation failed; removing the credential anyway');
      }
    }
    this.#vault.removeCredential(name);
    this.#log.info({ credential: name, revoked }, 'credential removed');
    return { removed: true, revoked };
  }

  /** Returns a valid token with at least `min(minTtlS, lifetime/2)` seconds left. */
  async getToken(name: string, minTtlS: number): Promise<TokenResponse> {
    const record = this.#require(name);
    if (record.kind === 'oauth') return this.#oauth.getToken(name, minTtlS);
    return this.#staticToken(record);
  }

  /** Handles a report that `accessToken` was rejected. A static key cannot be refreshed: it is returned as is. */
  async invalidate(name: string, accessToken: string): Promise<TokenResponse> {
    const record = this.#require(name);
    if (record.kind === 'oauth') return this.#oauth.invalidate(name, accessToken);
    return this.#staticToken(record);
  }

  /** Starts an interactive login for an OAuth credential, optionally asking for more `scope` (a step-up). */
  async login(
    name: string,
    flow: 'authorization_code' | 'device_code',
    scope?: string,
  ): Promise<AuthorizationCodeLoginResponse | DeviceLoginResponse> {
    const record = this.#require(name);
    if (record.kind !== 'oauth') {
      throw new ApiError(
        'INVALID_REQUEST',
        `credential "${name}" is a static API key: there is nothing to log in to`,
      );
    }
    return this.#oauth.startLogin(name, flow, scope);
  }

  /** Reports an interactive flow's progress. */
  flowStatus(flowId: string): FlowResponse {
    return this.#oauth.flowStatus(flowId);
  }

  /** Returns every credential's status entry. */
  list(): CredentialStatus[] {
    return this.#vault.listCredentials().map((record) => this.describe(record));
  }

  /** Returns one credential's status entry. */
  describe(record: CredentialRecord): CredentialStatus {
    if (record.kind === 'oauth')
      return { ...describeStatic(record), ...this.#oauth.describe(record), name: record.name };
    return describeStatic(record);
  }

  #staticToken(record: CredentialRecord): TokenResponse {
    const secret = this.#vault.readSecret(record, API_KEY_FIELD);
    if (!secret)
      throw new ApiError(
        'VAULT_CORRUPT',
        `credential "${record.name}" has no stored key: remove it and add it again`,
      );
    const tokenType = typeof record.config.token_type === 'string' ? record.config.token_type : 'Bearer';
    try {
      return { access_token: secret.reveal(), token_type: tokenType, expires_at: null, scope: null };
    } finally {
      secret.wipe();
    }
  }

  #require(name: string): CredentialRecord {
    const record = this.#vault.getCredential(name);
    if (!record) {
      throw new ApiError('NOT_FOUND', `no credential named "${name}": list them with: keyward status`);
    }
    return record;
  }
}

function alreadyExists(name: string): ApiError {
  return new ApiError(
    'ALREADY_EXISTS',
    `a credential named "${name}" exists: remove it first (keyward remove ${name}) or choose another name`,
  );
}
