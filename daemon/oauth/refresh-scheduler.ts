/**
 * Proactive refresh (architecture.md "Refresh engine" step 4): a credential in use is refreshed
 * at about 75% of its access token's lifetime, with jitter, so callers rarely wait for a refresh.
 *
 * "In use" means the current token was handed out at least once since it was issued; a token
 * nobody asked for is not refreshed again, so an abandoned credential goes quiet on its own.
 *
 * Timers count monotonic time, which stops during sleep and ignores wall-clock changes, while
 * expiry is wall-clock time. A periodic tick compares the two clocks and re-arms every timer after
 * a jump; it also fires any refresh that is overdue by the wall clock.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** What a proactive refresh attempt came to. */
export type ProactiveOutcome = 'refreshed' | 'retry' | 'stop';

/** What the scheduler needs. */
export interface SchedulerDeps {
  now: () => number;
  random: () => number;
  tickMs: number;
  clockJumpToleranceMs: number;
  /** First delay before re-trying a failed proactive refresh. */
  retryBaseMs: number;
  /** Refreshes one credential; the scheduler never throws through this. */
  refresh: (name: string) => Promise<ProactiveOutcome>;
  log: Logger;
}

interface Entry {
  issuedAt: number;
  expiresAt: number;
  dueAt: number;
  used: boolean;
  /** The due time passed while nobody used the token. */
  overdue: boolean;
  running: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/** The share of the lifetime after which a token in use is refreshed, and the jitter around it. */
const REFRESH_AT = 0.75;
const JITTER = 0.05;

/** Schedules proactive refreshes of the credentials in use. */
export class RefreshScheduler {
  readonly #deps: SchedulerDeps;
  readonly #entries = new Map<string, Entry>();
  readonly #tick: NodeJS.Timeout;
  #lastWall: number;
  #lastMono: number;
  #closed = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#lastWall = deps.now();
    this.#lastMono = performance.now();
    this.#tick = setInterval(() => this.#onTick(), deps.tickMs);
    this.#tick.unref();
  }

  /** Records a freshly issued token; `used` when it was issued for a waiting caller. */
  issued(name: string, issuedAt: number, expiresAt: number | null, used: boolean): void {
    this.forget(name);
    if (expiresAt === null || this.#closed) return; // Nothing to refresh ahead of (Notion).
    const lifetime = Math.max(0, expiresAt - issuedAt);
    const share = REFRESH_AT + (this.#deps.random() * 2 - 1) * JITTER;
    const entry: Entry = {
      issuedAt,
      expiresAt,
      dueAt: issuedAt + lifetime * share,
      used,
      overdue: false,
      running: false,
      failures: 0,
      timer: undefined,
    };
    this.#entries.set(name, entry);
    this.#arm(name, entry);
  }

  /**
   * Marks a credential's current token as handed out. After a restart the scheduler knows no
   * entry yet, so the caller passes the token's times from the vault.
   */
  used(name: string, current: { issuedAt: number; expiresAt: number } | null): void {
    let entry = this.#entries.get(name);
    if (entry === undefined || (current !== null && entry.expiresAt !== current.expiresAt)) {
      if (current === null) return;
      this.issued(name, current.issuedAt, current.expiresAt, true);
      entry = this.#entries.get(name);
      if (entry === undefined) return;
    }
    entry.used = true;
    if (entry.overdue) this.#fire(name, entry);
  }

  /** Drops a credential (removed, logged out, or waiting for a login). */
  forget(name: string): void {
    const entry = this.#entries.get(name);
    if (entry?.timer !== undefined) clearTimeout(entry.timer);
    this.#entries.delete(name);
  }

  /** The credentials with a pending proactive refresh. */
  get size(): number {
    return this.#entries.size;
  }

  /** Stops every timer. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#tick);
    for (const name of [...this.#entries.keys()]) this.forget(name);
  }

  #arm(name: string, entry: Entry): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    const delay = Math.max(0, entry.dueAt - this.#deps.now());
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#fire(name, entry);
    }, delay);
    entry.timer.unref();
  }

  #fire(name: string, entry: Entry): void {
    if (this.#closed || this.#entries.get(name) !== entry || entry.running) return;
    if (!entry.used) {
      entry.overdue = true;
      return;
    }
    entry.overdue = false;
    entry.running = true;
    this.#deps
      .refresh(name)
      .catch((): ProactiveOutcome => 'retry')
      .then((outcome) => {
        entry.running = false;
        // A successful refresh replaced the entry through issued(); a stale one is left alone.
        if (this.#entries.get(name) !== entry) return;
        if (outcome === 'stop' || outcome === 'refreshed') {
          this.forget(name);
          return;
        }
        entry.failures += 1;
        const now = this.#deps.now();
        const backoff = this.#deps.retryBaseMs * 2 ** Math.min(entry.failures - 1, 6);
        // Retry well before expiry when possible; after expiry callers refresh on demand.
        if (now >= entry.expiresAt) {
          this.forget(name);
          return;
        }
        entry.dueAt = now + Math.min(backoff, Math.max(0, (entry.expiresAt - now) / 2));
        this.#arm(name, entry);
      });
  }

  #onTick(): void {
    const wall = this.#deps.now();
    const mono = performance.now();
    const drift = wall - this.#lastWall - (mono - this.#lastMono);
    this.#lastWall = wall;
    this.#lastMono = mono;
    const jumped = Math.abs(drift) > this.#deps.clockJumpToleranceMs;
    if (jumped) {
      this.#deps.log.info({ drift_ms: Math.round(drift) }, 'clock jump detected; re-arming refresh timers');
    }
    for (const [name, entry] of this.#entries) {
      if (entry.running) continue;
      if (entry.dueAt <= wall) {
        if (entry.timer !== undefined) clearTimeout(entry.timer);
        entry.timer = undefined;
        this.#fire(name, entry);
      } else if (jumped) {
        this.#arm(name, entry);
      }
    }
  }
}
