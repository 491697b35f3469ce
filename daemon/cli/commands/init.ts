/** `keyward init [--key-store auto|keychain|file|passphrase]`: creates the vault; refuses if one exists. */
import { type Command, Option } from 'commander';
import type { Secret } from '../../secret.js';
import { CliError } from '../cli-error.js';
import type { CliContext } from '../context.js';
import { readSecretInput, say } from '../io.js';

/** Key stores `init` accepts. */
export const KEY_STORE_CHOICES = ['auto', 'keychain', 'file', 'passphrase'] as const;

/** Creates the vault and the admin token. */
export async function runInit(
  opts: { keyStore: (typeof KEY_STORE_CHOICES)[number] },
  ctx: CliContext,
): Promise<void> {
  // Loaded on use: the CLI's other commands need neither SQLite nor sodium.
  const { Vault } = await import('../../vault/vault.js');
  const { Secret } = await import('../../secret.js');
  const { ensureAdminToken } = await import('../../admin-token.js');
  if (Vault.exists(ctx.paths)) {
    throw new CliError(
      'ALREADY_EXISTS',
      `a vault exists at ${ctx.paths.vault}: keyward uses it as is (see: keyward status)`,
    );
  }
  let passphrase: Secret | undefined;
  if (opts.keyStore === 'passphrase') {
    const first = await readSecretInput(ctx.io, 'new vault passphrase: ', 'passphrase');
    if (ctx.io.stdin.isTTY) {
      const again = await readSecretInput(ctx.io, 'repeat the passphrase: ', 'passphrase');
      if (again !== first)
        throw new CliError('INVALID_REQUEST', 'the passphrases differ: nothing was created');
    }
    passphrase = Secret.fromString(first);
  }
  process.umask(0o077);
  const vault = await Vault.create(ctx.paths, {
    keyStore: opts.keyStore,
    ...(passphrase ? { passphrase } : {}),
  });
  passphrase?.wipe();
  const keyStore = vault.keyStore;
  vault.close();
  ensureAdminToken(ctx.paths).wipe();
  say(ctx.io, `created the vault at ${ctx.paths.vault} (key store: ${keyStore})`);
  if (keyStore === 'file') say(ctx.io, `its key is in ${ctx.paths.keyFile} (0600): keep that file private`);
  if (keyStore === 'passphrase') say(ctx.io, 'the daemon starts locked: unlock it with: keyward unlock');
  say(ctx.io, 'start the daemon with: keyward daemon');
}

/** Registers the command. */
export function registerInit(program: Command, context: () => CliContext): void {
  program
    .command('init')
    .description(
      'create the encrypted vault (the daemon also creates one with the default key store on first start)',
    )
    .addOption(
      new Option('--key-store <store>', 'where the vault key lives')
        .choices([...KEY_STORE_CHOICES])
        .default('auto'),
    )
    .action((opts: { keyStore: (typeof KEY_STORE_CHOICES)[number] }) => runInit(opts, context()));
}
