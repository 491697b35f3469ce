#!/usr/bin/env node
/**
 * Builds native/peercred (the peer-credentials addon) with the node-gyp that ships inside npm,
 * against the Node headers already on this machine. It never downloads anything and never fails
 * the install: when the addon cannot be built, it prints one warning line and exits 0, and the
 * daemon runs without peer uid checks (daemon/peer-cred.ts reports why). `--verbose` shows the
 * compiler's output.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'peercred');
const addonFile = join(addonDir, 'build', 'Release', 'peercred.node');
const verbose = process.argv.includes('--verbose');
const BUILD_TIMEOUT_MS = 180_000;

/** Prints the one warning line and leaves with success, so `npm ci` goes on. */
function giveUp(reason) {
  console.warn(
    `keyward: warning: native peer-credentials addon not built (${reason}); ` +
      'the daemon will rely on socket permissions alone. Run `npm run build:native -- --verbose` for details.',
  );
  process.exit(0);
}

/** Tells whether a folder holds the Node headers node-gyp needs (so it won't fetch them). */
function hasHeaders(nodedir) {
  return (
    existsSync(join(nodedir, 'include', 'node', 'node_api.h')) &&
    existsSync(join(nodedir, 'include', 'node', 'common.gypi'))
  );
}

/** Finds local Node headers: npm's `nodedir` setting first, then the prefix node runs from. */
function findNodedir() {
  const candidates = [
    process.env.npm_config_nodedir,
    // /usr/bin/node -> /usr; an official tarball or nvm install keeps include/node beside bin/.
    resolve(dirname(process.execPath), '..'),
  ];
  return candidates.find((dir) => dir && hasHeaders(resolve(dir)));
}

/** Finds the node-gyp that npm bundles, without asking the network for one. */
function findNodeGyp() {
  const candidates = [
    // npm sets this for every lifecycle script.
    process.env.npm_config_node_gyp,
    process.env.npm_execpath &&
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  const found = candidates.find((file) => file?.endsWith('.js') && existsSync(file));
  if (found) return found;
  try {
    return createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

/** Loads the built addon in a child process, so a broken binary cannot crash the install itself. */
function checkLoads() {
  const probe = `const m = require(${JSON.stringify(addonFile)}); if (typeof m.getPeerCred !== 'function') process.exit(3);`;
  const result = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', timeout: 30_000 });
  if (result.status === 0) return undefined;
  const firstLine = (result.stderr || '').split('\n').find((line) => line.trim() !== '');
  return firstLine ?? `exit ${result.status ?? result.signal}`;
}

function main() {
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    // Windows has no SO_PEERCRED; named pipes would need a different addon entirely.
    console.warn(`keyward: peer-credentials addon skipped on ${process.platform} (Linux and macOS only).`);
    return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) giveUp('node-gyp not found next to npm');
  const nodedir = findNodedir();
  if (!nodedir)
    giveUp('no local Node headers (include/node/node_api.h); set `npm config set nodedir <prefix>`');

  const started = Date.now();
  // An explicit --nodedir is what keeps node-gyp from downloading headers.
  const result = spawnSync(
    process.execPath,
    [nodeGyp, 'rebuild', `--directory=${addonDir}`, `--nodedir=${resolve(nodedir)}`, '--loglevel=warn'],
    {
      cwd: addonDir,
      stdio: verbose ? 'inherit' : 'pipe',
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
      // node-gyp lets npm's environment override its own flags, so set the same folder there too.
      env: { ...process.env, npm_config_nodedir: resolve(nodedir) },
    },
  );
  if (result.error) giveUp(`node-gyp could not run: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
    const lines = output.split('\n');
    // The compiler's or gyp's own first complaint says more than node-gyp's stack trace.
    const firstError =
      lines.find((line) => /\berror\b:|^gyp: /.test(line)) ??
      lines.find((line) => line.startsWith('gyp ERR!'));
    giveUp(`node-gyp exited ${result.status ?? result.signal}${firstError ? `: ${firstError.trim()}` : ''}`);
  }
  if (!existsSync(addonFile)) giveUp(`node-gyp succeeded but ${addonFile} is missing`);
  const loadError = checkLoads();
  if (loadError) giveUp(`built but does not load: ${loadError}`);
  console.warn(`keyward: peer-credentials addon built in ${Date.now() - started} ms.`);
}

try {
  main();
} catch (error) {
  giveUp(error instanceof Error ? error.message : String(error));
}
