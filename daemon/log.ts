/**
 * The daemon's logger: pino, JSON lines on stderr. Secrets stay out by construction (they are
 * `Secret`s, which serialise as `[REDACTED]`) and because error objects go through an allow-list
 * serializer; `redact` is only a backstop for field names that look secret.
 */
import pino, { type Logger } from 'pino';
import { inertText } from './inert-text.js';

export type { Logger } from 'pino';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Serialises an error as type, code and message only: no stack with locals, no response bodies. */
function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { type: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
}

/** Creates the daemon's logger; the level comes from `KEYWARD_LOG_LEVEL` (default `info`). */
export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const requested = options.level ?? process.env.KEYWARD_LOG_LEVEL ?? 'info';
  const level = LEVELS.has(requested) ? requested : 'info';
  return pino(
    {
      level,
      base: { pid: process.pid },
      serializers: { err: serializeError, error: serializeError },
      // pino escapes C0 in strings, not DEL, C1 or the Unicode overrides: escape those too, so a
      // peer's executable or an upstream's text cannot drive the terminal that shows the log.
      hooks: { streamWrite: inertText },
      redact: {
        paths: [
          '*.secret',
          '*.access_token',
          '*.refresh_token',
          '*.client_secret',
          '*.passphrase',
          '*.authorization',
          '*.headers.authorization',
          'req.headers.authorization',
        ],
        censor: '[REDACTED]',
      },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
