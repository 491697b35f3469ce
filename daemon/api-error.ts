/**
 * The daemon's one error class. Services throw it with a contract code; the server turns it into
 * `{"error":{"code","message"}}` with the code's HTTP status. Messages say what to do next and
 * never carry a secret or an upstream response body.
 */
import { type ErrorCode, statusForCode } from '../shared/errors.js';

/** An error with a contract code, safe to send to a client as is. */
export class ApiError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
    this.code = code;
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return statusForCode(this.code);
  }

  /** Returns the wire body. */
  toBody(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Tells whether a value is an `ApiError`. */
export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}
