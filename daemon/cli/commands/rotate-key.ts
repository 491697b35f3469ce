/**
 * `keyward rotate-key --key-store file|passphrase|keychain`: rewraps the vault's data key under a
 * new key-encryption key, in the running daemon (the one process that owns the vault), without
 * touching any record. Passphrases come from a no-echo prompt, or from stdin one per line when
 * stdin is not a TTY: the current one first (when the vault has one), then the new one. Moving
 * the key from the keychain or a passphrase to a file weakens the vault, so it asks first (on a
 * terminal) or needs `--yes` (in a script).
 */
import { type Command, Option } from 'commander';
import type { RotateKeyRequest, RotateKeyResponse, StatusResponse } from '../../../shared/protocol.js';
import { CliError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { type Io, readLine, readSecretInput, say } from '../io.js';

/** Key stores `rotate-key` moves to. */
export const ROTATE_KEY_STORES = ['file', 'passphrase', 'keychain'] as const;

type KeyStore = (typeof ROTATE_KEY_STORES)[number];

async function readAll(io: Io): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Reads the passphrases asked for, in order: prompts on a TTY, else one line of stdin each. */
async function readPassphrases(io: Io, asks: Array<{ prompt: string; what: string }>): Promise<string[]> {
  if (asks.length === 0) return [];
  if (io.stdin.isTTY) {
    const values: string[] = [];
    for (const ask of asks) values.push(await readSecretInput(io, ask.prompt, ask.what));
    return values;
  }
  const bytes = await readAll(io);
  const lines = bytes.toString('utf8').split(/\r?\n/);
  bytes.fill(0);
  return asks.map((ask, i) => {
    const value = lines[i] ?? '';
    if (value === '') {
      throw new CliError(
        'INVALID_REQUEST',
        `the ${ask.what} is missing: give ${asks.map((a) => `the ${a.what}`).join(', then ')} on stdin, one per line`,
      );
    }
    return value;
  });
}

/**
 * Makes sure the user means to move the key from `from` to a key file: on a terminal they type
 * `yes`; elsewhere only `--yes` says so, and without it nothing changes.
 */
async function confirmWeakerStore(ctx: CliContext, from: string): Promise<void> {
  const risk =
    `moving the key from the ${from} key store to a key file (${ctx.paths.keyFile}) makes the vault ` +
    'only as safe as that file: whoever can read it and vault.db (a backup, a synced folder, malware running as you) can open every secret';
  if (!ctx.io.stdin.isTTY) {
    throw new CliError(
      'INVALID_REQUEST',
      `${risk}. Nothing was changed: run it on a terminal to confirm, or add --yes if you mean it`,
    );
  }
  say(ctx.io, `warning: ${risk}.`);
  const answer = await readLine(ctx.io, 'type "yes" to move it: ');
  if (answer.trim() !== 'yes') {
    throw new CliError('INVALID_REQUEST', 'not confirmed: the key stays where it is');
  }
}

/** Rewraps the data key; returns nothing, says what happened on stderr. */
export async function runRotateKey(
  opts: { keyStore: KeyStore; yes?: boolean },
  ctx: CliContext,
): Promise<void> {
  let status: StatusResponse;
  try {
    status = await ctx.call<StatusResponse>('GET', '/status');
  } catch (err) {
    if (err instanceof CliError && err.code === 'DAEMON_UNAVAILABLE') {
      throw new CliError(
        'DAEMON_UNAVAILABLE',
        `rotate-key runs in the daemon, which owns the vault, and the daemon is not running: start it with: keyward daemon, then run this again (${err.message})`,
      );
    }
    throw err;
  }
  if (status.vault.locked) {
    throw new CliError('VAULT_LOCKED', 'the vault is locked: run: keyward unlock, then rotate the key');
  }
  if (opts.keyStore === 'file' && status.vault.key_store !== 'file' && opts.yes !== true) {
    await confirmWeakerStore(ctx, status.vault.key_store);
  }
  const needsCurrent = status.vault.key_store === 'passphrase';
  const needsNew = opts.keyStore === 'passphrase';
  const asks = [
    ...(needsCurrent ? [{ prompt: 'current vault passphrase: ', what: 'current passphrase' }] : []),
    ...(needsNew ? [{ prompt: 'new vault passphrase: ', what: 'new passphrase' }] : []),
  ];
  const values = await readPassphrases(ctx.io, asks);
  const request: RotateKeyRequest = { key_store: opts.keyStore };
  if (needsCurrent) request.current_passphrase = values[0] as string;
  if (needsNew) {
    request.passphrase = values[needsCurrent ? 1 : 0] as string;
    if (ctx.io.stdin.isTTY) {
      const again = await readSecretInput(ctx.io, 'repeat the new passphrase: ', 'passphrase');
      if (again !== request.passphrase) {
        throw new CliError('INVALID_REQUEST', 'the new passphrases differ: the key was not changed');
      }
    }
  }
  const result = await ctx.call<RotateKeyResponse>('POST', '/vault/rotate-key', request);
  say(
    ctx.io,
    `the vault's data key is now wrapped by the ${result.key_store} key store (from ${status.vault.key_store})`,
  );
  if (result.key_store === 'passphrase') {
    say(ctx.io, 'from its next start the daemon is locked until: keyward unlock');
  }
  if (result.leftover) say(ctx.io, `warning: ${result.leftover}`);
}

/** Registers the command. */
export function registerRotateKey(program: Command, context: () => CliContext): void {
  program
    .command('rotate-key')
    .description(
      "rewrap the vault's data key under a new key-encryption key, or move it to another key store (needs the daemon running)",
    )
    .addOption(
      new Option('--key-store <store>', 'where the new key-encryption key lives')
        .choices([...ROTATE_KEY_STORES])
        .makeOptionMandatory(),
    )
    .option('-y, --yes', 'move the key to a weaker store (keychain or passphrase → file) without asking')
    .action((opts: { keyStore: KeyStore; yes?: boolean }) => runRotateKey(opts, context()));
}
