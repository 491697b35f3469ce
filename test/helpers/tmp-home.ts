/**
 * A throwaway `KEYWARD_HOME` for tests: a fresh directory (mode 0700) under the system temp
 * directory, with every keyward path resolved inside it, removed when the test ends.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { currentPathInputs, type KeywardPaths, resolvePaths } from '../../shared/paths.js';

/** A temporary keyward home and its paths. */
export interface TmpHome {
  home: string;
  paths: KeywardPaths;
  /** The environment a child keyward process needs to use this home. */
  env: { KEYWARD_HOME: string; KEYWARD_SOCKET: string };
  /** Removes the directory and everything in it. */
  remove(): void;
}

/** Makes a temp home (0700); with a test context it is removed after that test. */
export function makeTmpHome(t?: TestContext): TmpHome {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-test-'));
  fs.chmodSync(home, 0o700);
  // Keep the socket inside the home so a test never touches the real XDG_RUNTIME_DIR.
  const env = { KEYWARD_HOME: home, KEYWARD_SOCKET: path.join(home, 'run', 'keyward.sock') };
  const paths = resolvePaths({ ...currentPathInputs(), env });
  const tmp: TmpHome = {
    home,
    paths,
    env,
    remove: () => fs.rmSync(home, { recursive: true, force: true }),
  };
  t?.after(() => tmp.remove());
  return tmp;
}
