/**
 * Doctor's checks read from the status object (`GET /v1/status`, or the vault's clear metadata
 * while the daemon is down): credentials that need a login or keep failing, a locked vault, and
 * the access policy. Pure functions of that data.
 */
import type { CredentialStatus, StatusResponse } from '../../shared/protocol.js';
import { type CheckResult, fail, ok, warn } from './check-result.js';

function loginFix(credential: CredentialStatus): string {
  if (credential.grant === 'client_credentials') {
    return (
      `its client credentials were refused: keyward remove ${credential.name}, then add it again ` +
      'with the right --client-id and --client-secret-stdin'
    );
  }
  return `keyward login ${credential.name}${credential.grant === 'device_code' ? ' --device' : ''}`;
}

/** One line per credential that cannot serve a token; one `ok` line when all can. */
export function credentialChecks(credentials: CredentialStatus[], opts: { live: boolean }): CheckResult[] {
  const results: CheckResult[] = [];
  for (const credential of credentials) {
    const id = `credential:${credential.name}`;
    const title = `credential ${credential.name}`;
    if (credential.state === 'needs_login') {
      const why = credential.last_error
        ? `its refresh token was rejected (${credential.last_error.code}, ${credential.last_error.at})`
        : 'it has never been logged in';
      results.push(fail(id, title, `needs a login: ${why}`, loginFix(credential)));
    } else if (credential.state === 'error') {
      const last = credential.last_error
        ? `${credential.last_error.code}: ${credential.last_error.message} (${credential.last_error.at})`
        : 'no error recorded';
      results.push(
        fail(
          id,
          title,
          `its token has expired and refreshing keeps failing: ${last}`,
          `check the network and the authorization server${credential.issuer ? ` (${credential.issuer})` : ''}, then: keyward token ${credential.name}`,
        ),
      );
    }
  }
  if (results.length > 0) return results;
  if (credentials.length === 0) {
    return [
      ok(
        'credentials',
        'credentials',
        'none yet (add one with: keyward add <name> --api-key, or --oauth ...)',
      ),
    ];
  }
  const ready = `${credentials.length} ${credentials.length === 1 ? 'credential' : 'credentials'}`;
  return [
    ok(
      'credentials',
      'credentials',
      opts.live ? `${ready}, all ready` : `${ready} in the vault, none marked as needing a login`,
    ),
  ];
}

/** The access policy line, when the daemon reports one: `open` is advice, not a failure. */
export function policyCheck(status: Pick<StatusResponse, 'policy'>): CheckResult | undefined {
  if (status.policy === undefined) return undefined;
  if (status.policy === 'open') {
    return warn(
      'policy',
      'policy',
      'open: any process running as you may get any token',
      'register each MCP server (keyward client add <client> --allow <cred>), then: keyward policy set strict',
    );
  }
  return ok('policy', 'policy', status.policy);
}

/** The key store line from a running daemon: a locked passphrase vault serves nothing. */
export function keyStoreCheck(vault: StatusResponse['vault']): CheckResult {
  if (vault.locked) {
    return fail(
      'key-store',
      'key store',
      `${vault.key_store}: the vault is locked, so no token can be served`,
      'keyward unlock (or give the service the passphrase: see docs/service.md)',
    );
  }
  return ok('key-store', 'key store', `${vault.key_store}, unlocked`);
}
