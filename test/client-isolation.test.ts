/**
 * The SDK must load no SQLite, no sodium, no fastify: an MCP server that installs keyward for the
 * client gets only `node:` modules and keyward's shared/ contract code.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/daemon-process.js';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

test('client/ and shared/ import only node: modules and each other', () => {
  for (const dir of ['client', 'shared']) {
    for (const file of sources(path.join(REPO_ROOT, dir))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
        const spec = match[1] as string;
        const rel = path.relative(REPO_ROOT, file);
        if (spec.startsWith('node:')) continue;
        // client/mcp.ts may load the MCP SDK (an optional peer dependency), type-only or lazily.
        if (rel === path.join('client', 'mcp.ts') && spec.startsWith('@modelcontextprotocol/sdk')) continue;
        assert.ok(spec.startsWith('.'), `${rel} imports the package "${spec}"`);
        const target = path.resolve(path.dirname(file), spec);
        assert.ok(!target.startsWith(path.join(REPO_ROOT, 'daemon')), `${rel} imports daemon/ (${spec})`);
        if (dir === 'shared')
          assert.ok(!target.startsWith(path.join(REPO_ROOT, 'client')), `${rel} imports client/`);
      }
    }
  }
});

test('importing keyward/client loads no package at run time', () => {
  // A resolve hook reports every module the import pulls in; none may come from node_modules.
  const hook =
    'data:text/javascript,export async function resolve(s, c, next) { const r = await next(s, c); ' +
    'process.stderr.write("LOADED " + r.url + "\\n"); return r; }';
  const script = `
    import { register } from 'node:module';
    register(${JSON.stringify(hook)});
    const m = await import('keyward/client');
    if (typeof m.KeywardClient !== 'function' || typeof m.KeywardError !== 'function') process.exit(3);
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  const loaded = result.stderr.split('\n').filter((l) => l.startsWith('LOADED '));
  assert.ok(
    loaded.some((l) => l.includes('/dist/client/index.js')),
    result.stderr,
  );
  assert.deepEqual(
    loaded.filter(
      (l) => !l.startsWith('LOADED node:') && !l.includes('/dist/client/') && !l.includes('/dist/shared/'),
    ),
    [],
  );
});
