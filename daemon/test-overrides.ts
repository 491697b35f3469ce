/**
 * Test-only knobs for the daemon: a `KEYWARD_TEST_*` variable is honoured only when
 * `KEYWARD_TESTING=1` is set as well, so a stray variable in a user's environment cannot shrink a
 * production daemon's security bounds (the audit log's size, the invalidate window).
 */

/** Returns the non-negative integer in `name` when tests enabled it, else undefined. */
export function testOverride(
  name: `KEYWARD_TEST_${string}`,
  env: NodeJS.ProcessEnv = process.env,
): number | undefined {
  if (env.KEYWARD_TESTING !== '1') return undefined;
  const raw = env[name];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}
