/**
 * Doctor's clock check. Token lifetimes are judged by the wall clock, so a clock that is years off,
 * being stepped, or now behind the times keyward recorded makes tokens look fresh when they are
 * not (or expired when they are fresh), and authorization servers reject skewed JWT assertions.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type CheckResult, fail, ok, warn } from './check-result.js';

/** The clocks the check reads; tests pass their own. */
export interface DoctorClock {
  wallMs(): number;
  monotonicMs(): number;
  sleep(ms: number): Promise<void>;
}

/** The process's clocks. */
export const systemClock: DoctorClock = {
  wallMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  sleep: (ms) => sleep(ms),
};

/** Before this, the clock is wrong: keyward did not exist yet. */
export const EARLIEST_PLAUSIBLE_MS = Date.UTC(2025, 0, 1);
/** After this, the clock is wrong too. */
export const LATEST_PLAUSIBLE_MS = Date.UTC(2100, 0, 1);
/** How long the wall clock is watched against the monotonic one. */
export const SAMPLE_MS = 100;
/** Disagreement over one sample beyond this means the wall clock was stepped (slewing is ~0.5 ms/s). */
export const DRIFT_TOLERANCE_MS = 250;
/** A recorded time further ahead than this means the clock went back since it was recorded. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

const FIX_CLOCK =
  'set the system clock and keep it synced (Linux: timedatectl set-ntp true; macOS: System Settings > General > Date & Time)';

/** A time keyward recorded, and what recorded it. */
export interface RecordedTime {
  what: string;
  at: string;
}

/** Checks the wall clock: plausible, not being stepped, not behind times keyward recorded. */
export async function clockCheck(clock: DoctorClock, recorded: RecordedTime[]): Promise<CheckResult> {
  const wall0 = clock.wallMs();
  const mono0 = clock.monotonicMs();
  const now = new Date(wall0).toISOString();
  if (wall0 < EARLIEST_PLAUSIBLE_MS || wall0 >= LATEST_PLAUSIBLE_MS) {
    return fail('clock', 'clock', `the system clock says ${now}, which cannot be right`, FIX_CLOCK);
  }
  for (const entry of recorded) {
    const at = Date.parse(entry.at);
    if (!Number.isNaN(at) && at - wall0 > FUTURE_TOLERANCE_MS) {
      const minutes = Math.round((at - wall0) / 60_000);
      return fail(
        'clock',
        'clock',
        `${entry.what} at ${entry.at}, ${minutes} min after now (${now}): the clock went back since`,
        FIX_CLOCK,
      );
    }
  }
  await clock.sleep(SAMPLE_MS);
  const drift = clock.wallMs() - wall0 - (clock.monotonicMs() - mono0);
  if (Math.abs(drift) > DRIFT_TOLERANCE_MS) {
    return warn(
      'clock',
      'clock',
      `the wall clock moved ${Math.round(drift)} ms against the monotonic clock within ${SAMPLE_MS} ms: something is stepping it`,
      'let one time service manage the clock (two NTP clients fighting, or a manual date loop?)',
    );
  }
  return ok('clock', 'clock', `${now}, steady against the monotonic clock`);
}
