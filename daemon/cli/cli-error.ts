/** An error the CLI reports as `keyward: <CODE>: <message>` and exits with. */
import { type ClientErrorCode, exitCodeFor } from '../../shared/errors.js';

/** A CLI failure with the contract code and exit status it maps to. */
export class CliError extends Error {
  readonly code: ClientErrorCode | 'USAGE';
  readonly exitCode: number;

  constructor(code: ClientErrorCode | 'USAGE', message: string, exitCode?: number) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.exitCode = exitCode ?? (code === 'USAGE' ? 2 : exitCodeFor(code));
  }
}
