/**
 * Test-only settings. A variable named `KEYWARD_TEST_*` is honoured only when `KEYWARD_TESTING=1`
 * is also set, so a stray variable in a user's environment can never redirect a real daemon.
 */

/** Returns the value of test-only variable `name` (`KEYWARD_TEST_*`), or undefined outside tests. */
export function testSetting(
  name: `KEYWARD_TEST_${string}`,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (env.KEYWARD_TESTING !== '1') return undefined;
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}
