/** The SDK's error: `code` is a contract code, or `DAEMON_UNAVAILABLE` when the daemon can't be reached. */
import type { ClientErrorCode } from '../shared/errors.js';

/** An error from keyward; branch on `code`, never on `message`. */
export class KeywardError extends Error {
  readonly code: ClientErrorCode;
  /** The HTTP status the daemon answered with, when it answered. */
  readonly status: number | undefined;

  constructor(code: ClientErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeywardError';
    this.code = code;
    this.status = options?.status;
  }
}

/** Returns the error for a daemon that cannot be reached at `socketPath`, with how to start one. */
export function daemonUnavailable(socketPath: string, cause: NodeJS.ErrnoException): KeywardError {
  const why = cause.code ?? cause.message;
  return new KeywardError(
    'DAEMON_UNAVAILABLE',
    `cannot reach the keyward daemon at ${socketPath} (${why}): is it running? ` +
      'start it with: keyward daemon (or install the service: keyward service install)',
    { cause },
  );
}
