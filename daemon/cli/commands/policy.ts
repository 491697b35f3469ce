/**
 * `keyward policy set open|strict`, `keyward policy show`: the access mode. In `open` mode a
 * request without a token gets full access (any process of this user, as with ssh-agent); in
 * `strict` mode it gets only `health`, and MCP servers need a client token.
 */
import { Argument, type Command } from 'commander';
import { ACCESS_POLICIES, type AccessPolicy, type PolicyResponse } from '../../../shared/protocol.js';
import type { CliContext } from '../context.js';
import { printData, say } from '../io.js';

const EXPLAIN: Record<AccessPolicy, string> = {
  open: 'requests without a token get full access (any process running as you)',
  strict: 'requests without a token get only health; MCP servers need a client token (keyward client add)',
};

/** Sets the access mode. */
export async function runPolicySet(policy: AccessPolicy, ctx: CliContext): Promise<void> {
  const result = await ctx.call<PolicyResponse>('POST', '/policy', { policy });
  say(ctx.io, `policy: ${result.policy}: ${EXPLAIN[result.policy]}`);
}

/** Prints the access mode. */
export async function runPolicyShow(ctx: CliContext): Promise<void> {
  const result = await ctx.call<PolicyResponse>('GET', '/policy');
  printData(ctx.io, result.policy);
  say(ctx.io, EXPLAIN[result.policy]);
}

/** Registers the command and its subcommands. */
export function registerPolicy(program: Command, context: () => CliContext): void {
  const policy = program.command('policy').description('show or set the access mode (open or strict)');
  policy
    .command('set')
    .description('set the access mode')
    .addArgument(new Argument('<mode>', 'open or strict').choices([...ACCESS_POLICIES]))
    .action((mode: AccessPolicy) => runPolicySet(mode, context()));
  policy
    .command('show')
    .description('print the access mode')
    .action(() => runPolicyShow(context()));
}
