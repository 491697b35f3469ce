/**
 * Test-only switches. Some behaviour exists only so the test suite stays fast or can reach a
 * corner (a cheap KDF, short intervals). Every such switch is an environment variable named
 * `KEYWARD_TEST_*`, read only through `testOverride()`, and honoured only when `KEYWARD_TESTING=1`
 * is set too, so a stray `KEYWARD_TEST_FAST_KDF=1` in a real environment weakens nothing. The
 * daemon says loudly at start which switches are active (and which were ignored).
 */

/** The variable that must be `1` for any `KEYWARD_TEST_*` switch to count. */
export const TESTING_VAR = 'KEYWARD_TESTING';

/** The prefix every test-only switch's name has. */
export const TEST_OVERRIDE_PREFIX = 'KEYWARD_TEST_';

/** The name of a test-only switch. */
export type TestOverrideName = `${typeof TEST_OVERRIDE_PREFIX}${string}`;

type Env = Record<string, string | undefined>;

/** Tells whether this process runs under the test suite (`KEYWARD_TESTING=1`). */
export function isTesting(env: Env = process.env): boolean {
  return env[TESTING_VAR] === '1';
}

/** Returns a test-only switch's value, or undefined when it is unset, empty, or not in a test run. */
export function testOverride(name: TestOverrideName, env: Env = process.env): string | undefined {
  if (!isTesting(env)) return undefined;
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Returns the `KEYWARD_TEST_*` switches that are set, split into honoured and ignored. */
export function testOverrideReport(env: Env = process.env): { active: string[]; ignored: string[] } {
  const set = Object.keys(env)
    .filter((name) => name.startsWith(TEST_OVERRIDE_PREFIX) && (env[name] ?? '') !== '')
    .sort();
  return isTesting(env) ? { active: set, ignored: [] } : { active: [], ignored: set };
}

/** Returns the start-up warning lines for the switches in `env` (none in a normal environment). */
export function testOverrideWarnings(env: Env = process.env): string[] {
  const { active, ignored } = testOverrideReport(env);
  const lines: string[] = [];
  if (active.length > 0) {
    lines.push(
      `TEST MODE: ${TESTING_VAR}=1 and ${active.join(', ')} are active: this daemon is weakened for the test suite; never keep real credentials in it`,
    );
  }
  if (ignored.length > 0) {
    lines.push(
      `ignoring ${ignored.join(', ')}: test-only switches count only with ${TESTING_VAR}=1 (unset them)`,
    );
  }
  return lines;
}

/** Returns a test-only switch holding a non-negative integer (a size, a window), else undefined. */
export function testOverrideInt(name: TestOverrideName, env: Env = process.env): number | undefined {
  const raw = testOverride(name, env);
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
}
