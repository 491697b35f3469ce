/**
 * The error registry: every code the socket API can answer with, its HTTP status and what it
 * means. contract.md's "Errors" table is this table; test/errors.test.ts keeps them in step.
 */
export const ERROR_CODES = {
  INVALID_REQUEST: { status: 400, meaning: 'malformed JSON, bad field, bad name, unknown field' },
  UNAUTHENTICATED: { status: 401, meaning: 'a client token is required and is missing or wrong' },
  FORBIDDEN: {
    status: 403,
    meaning:
      'the caller may not do this (another user, a client without a grant, a browser-originated request)',
  },
  NOT_FOUND: { status: 404, meaning: 'no such credential, flow or route' },
  ALREADY_EXISTS: { status: 409, meaning: 'a credential of that name exists' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'body over 64 KiB' },
  VAULT_LOCKED: { status: 423, meaning: 'passphrase vault not unlocked yet' },
  LOGIN_REQUIRED: {
    status: 428,
    meaning: 'no usable grant: never logged in, or the server rejected the refresh token',
  },
  VAULT_CORRUPT: {
    status: 500,
    meaning: 'a record failed authentication (tampered or damaged); other credentials keep working',
  },
  INTERNAL: { status: 500, meaning: 'a bug; the message carries no secret' },
  UPSTREAM_ERROR: { status: 502, meaning: 'the authorization server answered with something unusable' },
  UPSTREAM_UNAVAILABLE: {
    status: 503,
    meaning: 'the authorization server is unreachable or failing transiently and no valid token is left',
  },
} as const satisfies Record<string, { status: number; meaning: string }>;

/** A code the daemon answers with. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes only the client side raises: the daemon never sends them. */
export const CLIENT_ERROR_CODES = {
  DAEMON_UNAVAILABLE: 'the daemon could not be reached on its socket',
} as const;

/** Any code a `KeywardError` can carry. */
export type ClientErrorCode = ErrorCode | keyof typeof CLIENT_ERROR_CODES;

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Returns the HTTP status for a code. */
export function statusForCode(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/** Tells whether a string is one of the daemon's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** CLI exit codes (contract.md "CLI"). */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  DAEMON_UNREACHABLE: 3,
  NOT_FOUND: 4,
  LOGIN_REQUIRED: 5,
} as const;

/** Maps an error code to the CLI's exit code. */
export function exitCodeFor(code: ClientErrorCode): number {
  switch (code) {
    case 'DAEMON_UNAVAILABLE':
      return EXIT.DAEMON_UNREACHABLE;
    case 'NOT_FOUND':
      return EXIT.NOT_FOUND;
    case 'LOGIN_REQUIRED':
      return EXIT.LOGIN_REQUIRED;
    case 'INVALID_REQUEST':
      return EXIT.USAGE;
    default:
      return EXIT.ERROR;
  }
}
