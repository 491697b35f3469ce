/**
 * `npm run compare:mcp-remote`: keyward's stdio proxy and mcp-remote 0.15.1 side by side, under
 * the same load against the same kind of server (see proxy-load.ts), printed as a markdown table.
 *
 * Options: `--hosts N` (3), `--expiries N` (2), `--ttl SECONDS[,SECONDS...]` (5,75: one below
 * mcp-remote's 60-second early-expiry margin, one above it), `--interval MS` (250),
 * `--tool keyward|mcp-remote` (both), `--json` (the raw results instead of the table).
 */
import { parseArgs } from 'node:util';
import { type LoadResult, measure, type ProxyTool } from './proxy-load.js';
import { table } from './report.js';

/** Renders the results as the README's table. */
export function comparisonTable(results: LoadResult[]): string {
  const rows = results.map((r) => [
    `${r.ttlSeconds} s`,
    r.tool === 'keyward' ? '`keyward proxy`' : '`mcp-remote` 0.15.1',
    `${r.calls - r.failedCalls} of ${r.calls}`,
    `${r.refreshes} (${formatRate(r.refreshesPerExpiry)} per expiry)`,
    String(r.grantErrors.length),
    String(r.loginPrompts),
    r.tokensInClearOnDisk === 0
      ? 'none'
      : `${r.tokensInClearOnDisk} tokens, in ${r.filesWithTokens.map((f) => `\`${stableName(f)}\``).join(', ')}`,
    String(r.tokensOnStderr),
    removalOutcome(r),
  ]);
  return table(
    [
      'access token',
      'proxy',
      'tool calls served',
      'refreshes at the server',
      '`grant.error`',
      'new logins asked',
      'tokens in clear on disk',
      'tokens on stderr',
      'removal',
    ],
    rows,
  );
}

/** Says what removing did; a grant the server already revoked during the load proves nothing. */
function removalOutcome(r: LoadResult): string {
  if (r.grantErrors.some((e) => e.startsWith('invalid_grant'))) {
    return `${r.removal}: not measured, the server had already revoked the grant (reuse detection)`;
  }
  const outcome = r.removalRevokes ? 'revoked' : 'the refresh token is still accepted';
  return `${r.removal}: ${outcome} (${r.afterRemoval})`;
}

/** Replaces the server-URL hash in mcp-remote's file names, which changes with every port. */
function stableName(file: string): string {
  return file.replace(/[0-9a-f]{32}/g, '<hash>');
}

/** Formats a per-expiry rate without trailing zeros. */
function formatRate(rate: number): string {
  return Number.isInteger(rate) ? String(rate) : rate.toFixed(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hosts: { type: 'string', default: '3' },
      expiries: { type: 'string', default: '2' },
      ttl: { type: 'string', default: '5,75' },
      interval: { type: 'string', default: '250' },
      tool: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const options = {
    hosts: Number(values.hosts),
    expiries: Number(values.expiries),
    intervalMs: Number(values.interval),
  };
  const ttls = values.ttl.split(',').map(Number);
  const tools: ProxyTool[] =
    values.tool === undefined ? ['keyward', 'mcp-remote'] : [values.tool as ProxyTool];
  const results: LoadResult[] = [];
  for (const ttlSeconds of ttls) {
    for (const tool of tools) {
      process.stderr.write(`measuring ${tool} with ${ttlSeconds} s access tokens...\n`);
      results.push(await measure(tool, { ...options, ttlSeconds }));
    }
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `${options.hosts} host processes, one proxy each, each calling a tool every ${options.intervalMs} ms ` +
      `for ${options.expiries} access-token lifetimes; oidc-provider with refresh-token rotation and reuse detection:\n\n`,
  );
  process.stdout.write(`${comparisonTable(results)}\n`);
  for (const r of results) {
    if (r.failures.length > 0 || r.grantErrors.length > 0) {
      const what = [...r.failures, ...new Set(r.grantErrors)].join('; ');
      process.stdout.write(`\n${r.tool}, ${r.ttlSeconds} s tokens: ${what}\n`);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
