/**
 * The CLI's admin token: `<KEYWARD_HOME>/admin.token`, 0600, created with the vault. The CLI sends
 * it as `Authorization: Bearer`; the daemon compares in constant time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { KeywardPaths } from '../shared/paths.js';
import { checkPrivateFile, writePrivateFile } from './fs-safety.js';
import { Secret } from './secret.js';

/** Prefix that lets secret scanners recognise an admin token. */
export const ADMIN_TOKEN_PREFIX = 'kwa_';

/** Creates `admin.token` if it is missing; returns the token. */
export function ensureAdminToken(paths: KeywardPaths): Secret {
  if (fs.existsSync(paths.adminToken)) return readAdminToken(paths);
  const token = `${ADMIN_TOKEN_PREFIX}${crypto.randomBytes(32).toString('base64url')}`;
  writePrivateFile(paths.adminToken, `${token}\n`, { exclusive: true });
  return Secret.fromString(token);
}

/** Reads `admin.token` after checking that it is private to this user. */
export function readAdminToken(paths: KeywardPaths): Secret {
  checkPrivateFile(paths.adminToken);
  const bytes = fs.readFileSync(paths.adminToken);
  const text = bytes.toString('utf8').trim();
  bytes.fill(0);
  return Secret.fromString(text);
}

/** Reads `admin.token` for the CLI, or returns undefined when there is none to read. */
export function tryReadAdminToken(paths: KeywardPaths): string | undefined {
  try {
    return fs.readFileSync(paths.adminToken, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
