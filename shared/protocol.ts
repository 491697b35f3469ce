/**
 * Wire types of the socket API (contract.md "The socket API"). Both the daemon and the client
 * import these; nothing here may import from daemon/ or client/.
 */

/** Every route lives under this prefix. */
export const API_PREFIX = '/v1';

/** Largest request body the daemon reads, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The `min_ttl` a token request gets when it names none, in seconds. */
export const DEFAULT_MIN_TTL_S = 60;

/** Credential kinds. */
export type CredentialKind = 'api_key' | 'oauth';

/** OAuth grants a credential can use. */
export type GrantType = 'authorization_code' | 'device_code' | 'client_credentials';

/** The grants, as a list for validation. */
export const GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'device_code', 'client_credentials'];

/** Credential state in the status object. */
export type CredentialState = 'ready' | 'needs_login' | 'error';

/** `GET /v1/health`. */
export interface HealthResponse {
  status: 'ok';
  version: string;
}

/** The token object. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_at: string | null;
  scope: string | null;
}

/** The last error recorded against a credential. */
export interface LastError {
  code: string;
  message: string;
  at: string;
}

/** One credential's entry in the status object; never holds a secret. */
export interface CredentialStatus {
  name: string;
  kind: CredentialKind;
  state: CredentialState;
  grant: GrantType | null;
  issuer: string | null;
  scope: string | null;
  expires_at: string | null;
  last_refresh_at: string | null;
  last_error: LastError | null;
  /** The remote MCP server an `add --mcp-server` credential is for (its canonical URI); absent otherwise. */
  mcp_server?: string;
}

/**
 * The daemon's own view of its sandbox, read from the inside (`/proc/self`, access(2)), so `doctor`
 * checks what is in effect rather than what a unit file asks for. `null` means "could not tell".
 */
export interface SandboxReport {
  /** The service manager running this daemon as keyward's service, or null when started by hand. */
  manager: 'systemd' | 'launchd' | null;
  /** The daemon runs in a user namespace of its own (systemd `PrivateUsers=`). */
  user_namespace: boolean | null;
  /** `/usr` sits on a read-only mount (systemd `ProtectSystem=`). */
  usr_read_only: boolean | null;
  /** The daemon could write `$HOME` itself, outside keyward's directories (systemd `ProtectHome=`). */
  home_writable: boolean | null;
  /** The daemon can write `KEYWARD_HOME` (systemd `ReadWritePaths=`); it must. */
  keyward_home_writable: boolean;
  /** `/tmp` is not the `/tmp` PID 1 sees (systemd `PrivateTmp=`). */
  tmp_private: boolean | null;
  /** The no_new_privs bit is set (systemd `NoNewPrivileges=`). */
  no_new_privs: boolean | null;
  /** The core dump size limit (soft) is above zero (systemd `LimitCORE=`). */
  core_dumps: boolean | null;
}

/** `GET /v1/status`. */
export interface StatusResponse {
  version: string;
  pid: number;
  uptime_s: number;
  socket: string;
  vault: { path: string; key_store: string; credentials: number; locked?: boolean };
  policy?: string;
  credentials: CredentialStatus[];
  /** The daemon's sandbox as seen from inside (Linux; absent elsewhere and from older daemons). */
  sandbox?: SandboxReport;
}

/** `POST /v1/credentials` for a static secret. */
export interface AddApiKeyRequest {
  name: string;
  kind: 'api_key';
  secret: string;
  token_type?: string;
}

/** `POST /v1/credentials` for an OAuth credential: one source among issuer, provider, endpoints, mcp_server. */
export interface AddOAuthRequest {
  name: string;
  kind: 'oauth';
  client_id?: string;
  client_secret?: string;
  scope?: string;
  resource?: string;
  grant?: GrantType;
  issuer?: string;
  provider?: string;
  authorization_url?: string;
  token_url?: string;
  device_authorization_url?: string;
  revocation_url?: string;
  mcp_server?: string;
  /** The loopback redirect port to register (dynamic registration) or that was registered (`--redirect-port`). */
  redirect_port?: number;
  /** Leave RFC 8707 `resource` out of authorization and token requests (`--no-resource`; Entra ID v2). */
  no_resource?: boolean;
}

/** `POST /v1/credentials`. */
export type AddCredentialRequest = AddApiKeyRequest | AddOAuthRequest;

/** `DELETE /v1/credentials/{name}` body. */
export interface RemoveCredentialRequest {
  revoke?: boolean;
}

/** `DELETE /v1/credentials/{name}` answer. */
export interface RemoveCredentialResponse {
  removed: true;
  revoked: boolean;
}

/** `POST /v1/credentials/{name}/token` body. */
export interface TokenRequest {
  min_ttl?: number;
}

/** `POST /v1/credentials/{name}/invalidate` body. */
export interface InvalidateRequest {
  access_token: string;
}

/** `POST /v1/credentials/{name}/login` body. */
export interface LoginRequest {
  flow: 'authorization_code' | 'device_code';
  /**
   * Scopes to ask for on top of the credential's own, space-separated: a step-up after a resource
   * server answered 403 `insufficient_scope` (RFC 6750 §3.1). The login asks for the union, which
   * becomes the credential's scope once the login completes.
   */
  scope?: string;
}

/** `POST /v1/credentials/{name}/login` answer for the authorization code flow. */
export interface AuthorizationCodeLoginResponse {
  flow_id: string;
  authorization_url: string;
}

/** `POST /v1/credentials/{name}/login` answer for the device flow. */
export interface DeviceLoginResponse {
  flow_id: string;
  verification_uri: string;
  verification_uri_complete?: string;
  user_code: string;
  expires_at: string;
}

/** `GET /v1/flows/{flow_id}`. */
export interface FlowResponse {
  state: 'pending' | 'complete' | 'failed';
  error?: { code: string; message: string };
}

/** The access mode (contract.md "Access control"): `open` by default. */
export type AccessPolicy = 'open' | 'strict';

/** The access modes, as a list for validation. */
export const ACCESS_POLICIES: readonly AccessPolicy[] = ['open', 'strict'];

/** One registered client, as `GET /v1/clients` lists it; its token is never part of it. */
export interface ClientEntry {
  name: string;
  allow: string[];
  created_at: string;
  last_used_at: string | null;
}

/** `GET /v1/clients`. */
export interface ClientListResponse {
  clients: ClientEntry[];
}

/** `POST /v1/clients` body. */
export interface AddClientRequest {
  name: string;
  allow: string[];
}

/** `POST /v1/clients` answer: the entry and its token, shown this once. */
export interface AddClientResponse extends ClientEntry {
  token: string;
}

/** `DELETE /v1/clients/{name}` answer. */
export interface RemoveClientResponse {
  removed: true;
}

/** `GET /v1/policy` and `POST /v1/policy` answer. */
export interface PolicyResponse {
  policy: AccessPolicy;
}

/** `POST /v1/policy` body. */
export interface SetPolicyRequest {
  policy: AccessPolicy;
}

/** `POST /v1/vault/rotate-key` body: the new key store; passphrases only where one is involved. */
export interface RotateKeyRequest {
  key_store: 'file' | 'keychain' | 'passphrase';
  /** The new passphrase, when moving to (or staying on) the passphrase store. */
  passphrase?: string;
  /** The current passphrase, required when leaving (or changing) a passphrase store. */
  current_passphrase?: string;
}

/** `POST /v1/vault/rotate-key` answer. */
export interface RotateKeyResponse {
  key_store: 'file' | 'keychain' | 'passphrase';
  /** A sentence naming old key material that could not be removed, or null. */
  leftover: string | null;
}

/** `POST /v1/audit/verify` answer. */
export interface AuditVerifyResponse {
  intact: boolean;
  /** Lines checked, across every file. */
  lines: number;
  /** The files checked, oldest first. */
  files: string[];
  /** Lines written before the first retained one: left by rotation, not by tampering. */
  rotated: number;
  /** Admin events among the rotated lines, kept (and verified) in `admin_file`. */
  rotated_admin: number;
  /** The file that keeps every admin event past rotation, once there is one. */
  admin_file?: string;
  /** The first line that failed, when one did. */
  failure?: { file: string; line: number; seq: number | null; reason: string };
}
