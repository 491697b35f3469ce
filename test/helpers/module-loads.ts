/**
 * Which modules an import pulls in at run time, seen from a fresh Node process through a resolve
 * hook: how the tests prove that `keyward/client` and `keyward/mcp` load no package.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './daemon-process.js';

/**
 * Imports `specifier` (resolved through keyward's own exports map, as an installed MCP server
 * would) in a fresh process, checks that it exports each of `exportsExpected` as a function, and
 * returns the URL of every module resolved on the way.
 */
export function modulesLoadedBy(specifier: string, exportsExpected: string[]): string[] {
  const hook =
    'data:text/javascript,export async function resolve(s, c, next) { const r = await next(s, c); ' +
    'process.stderr.write("LOADED " + r.url + "\\n"); return r; }';
  const script = `
    import { register } from 'node:module';
    register(${JSON.stringify(hook)});
    const m = await import(${JSON.stringify(specifier)});
    for (const name of ${JSON.stringify(exportsExpected)}) if (typeof m[name] !== 'function') process.exit(3);
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length));
}

/** The loaded modules that are neither `node:` built-ins nor keyward's client/ and shared/ code. */
export function foreignModules(loaded: string[]): string[] {
  return loaded.filter(
    (u) => !u.startsWith('node:') && !u.includes('/dist/client/') && !u.includes('/dist/shared/'),
  );
}
