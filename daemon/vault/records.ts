/**
 * Credential rows: how a credential's clear columns map to a `CredentialRecord`, and the errors
 * that name a credential.
 */
import type Database from 'better-sqlite3';
import type { CredentialKind } from '../../shared/protocol.js';
import { ApiError } from '../api-error.js';

/** One credential as the vault stores it, without its secrets. */
export interface CredentialRecord {
  id: number;
  name: string;
  kind: CredentialKind;
  /** Clear: what was registered (issuer, endpoints, client_id, scope, grant, token_type, ...). */
  config: Record<string, unknown>;
  /** Clear: lifecycle (expires_at, last_refresh_at, last_error, state, ...). */
  state: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** A row of the credentials table. */
export interface CredentialRow {
  id: number;
  name: string;
  kind: CredentialKind;
  config: string;
  state: string;
  created_at: string;
  updated_at: string;
}

// Secret field names go into the associated data and into messages; keep them plain.
const FIELD_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Parses a clear JSON column; a damaged one reads as empty. */
export function parseObject(json: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Fall through: a damaged clear column must not take the whole list down.
  }
  return {};
}

/** Maps a row to a record. */
export function toRecord(row: CredentialRow): CredentialRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    config: parseObject(row.config),
    state: parseObject(row.state),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Lists every credential, by name. */
export function listRows(db: Database.Database): CredentialRecord[] {
  const rows = db.prepare('SELECT * FROM credentials ORDER BY name').all() as CredentialRow[];
  return rows.map(toRecord);
}

/** Tells whether an SQLite error is a UNIQUE violation. */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown })?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The error for a credential name that is taken. */
export function alreadyExists(name: string): ApiError {
  return new ApiError(
    'ALREADY_EXISTS',
    `a credential named "${name}" already exists: pick another name, or run: keyward remove ${name}`,
  );
}

/** The error for an unknown credential name. */
export function notFound(name: string): ApiError {
  return new ApiError('NOT_FOUND', `no credential named "${name}": run: keyward status to list them`);
}

/** Refuses a secret field name that is not plain (it goes into associated data and messages). */
export function assertField(field: string): void {
  if (!FIELD_PATTERN.test(field)) throw new ApiError('INTERNAL', `invalid secret field name "${field}"`);
}
