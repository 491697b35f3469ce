/**
 * The SDK must load no SQLite, no sodium, no fastify: an MCP server that installs keyward for the
 * client gets only `node:` modules and keyward's shared/ contract code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/daemon-process.js';
import { foreignModules, modulesLoadedBy } from './helpers/module-loads.js';

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
  const loaded = modulesLoadedBy('keyward/client', ['KeywardClient', 'KeywardError']);
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/client/index.js')),
    loaded.join('\n'),
  );
  assert.deepEqual(foreignModules(loaded), []);
});
