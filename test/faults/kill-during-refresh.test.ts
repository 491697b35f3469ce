/**
 * kill -9 at random moments while 1-second access tokens are refreshed continuously, against
 * oidc-provider with refresh-token rotation and reuse detection. After every restart each
 * credential must be usable, or reported `needs_login` only where the kill landed inside the
 * refresh exchange: after the server rotated the refresh token and before keyward committed the
 * new one. Never a silent loss, and never a reuse of a refresh token whose successor was
 * committed.
 *
 * The oracle is the server's: oidc-provider's `grant.success` events count the rotations it made,
 * and a reused refresh token shows as a `grant.error` "refresh token already used". keyward logs
 * `token refreshed` synchronously right after each commit, so rotations the server made minus
 * commits keyward logged = exchanges the kill interrupted. Both are counted from the start of the
 * test, not per cycle: a proactive refresh can be answered by the server before a cycle's first
 * reading and committed after it, and per-cycle counts would then see a commit without its
 * rotation. A reuse in a cycle without a cut exchange means a committed refresh token was
 * presented again: a bug.
 *
 * KEYWARD_FAULT_KILLS sets the number of kills (default 12 here; `npm run test:faults` runs 50).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as jose from 'jose';
import { KeywardClient, KeywardError } from '../../client/index.js';
import { type OidcServer, startOidcServer } from '../fixtures/oidc-server.js';
import { type DaemonProcess, makeHome, startDaemon, type TestHome } from '../helpers/daemon-process.js';
import { addOAuthCredential, credentialStatus, loginCredential } from './support/keyward-oauth.js';
import { envInt, recordFaultSummary } from './support/summary.js';

const KILLS = envInt('KEYWARD_FAULT_KILLS', 12);
const CREDENTIALS = ['alpha', 'beta', 'gamma'];
/** Callers per credential while the daemon runs. */
const CALLERS = 2;
/** The kill lands this long after the restarted daemon answered, uniformly at random. */
const KILL_WINDOW_MS: [number, number] = [100, 1_200];
/** Time for the server to finish a request the dead daemon had sent. */
const SETTLE_MS = 300;

interface Cycle {
  runMs: number;
  /** Rotations the server made minus commits keyward logged: exchanges the kill cut. */
  cutExchanges: number;
  /** Time keyward spent refreshing (lock held, request, commit), summed over credentials. */
  exchangeMs: number;
  needsLogin: string[];
  usable: string[];
  reusesWhileRunning: number;
  reusesAfterRestart: number;
  otherOutcomes: string[];
}

interface LogLine {
  msg?: string;
  duration_ms?: number;
}

function refreshesLogged(output: string): { count: number; ms: number } {
  let count = 0;
  let ms = 0;
  for (const raw of output.split('\n')) {
    if (!raw.includes('"token refreshed"')) continue;
    try {
      const line = JSON.parse(raw) as LogLine;
      count += 1;
      ms += line.duration_ms ?? 0;
    } catch {
      // A line cut by the kill: the commit before it happened, but count only whole lines; a cut
      // line makes the check stricter, never looser.
    }
  }
  return { count, ms };
}

const reuses = (server: OidcServer, from: number) =>
  server.events.grantErrors.slice(from).filter((e) => /already used/.test(e.detail ?? '')).length;

describe(`kill -9 during continuous refresh (${KILLS} kills)`, { timeout: KILLS * 15_000 + 60_000 }, () => {
  let server: OidcServer;
  let home: TestHome;
  let daemon: DaemonProcess | undefined;
  const cycles: Cycle[] = [];

  before(async () => {
    server = await startOidcServer({ accessTokenTtl: 1 });
    home = makeHome({ KEYWARD_LOG_LEVEL: 'info' });
    daemon = await startDaemon(home);
    for (const name of CREDENTIALS) {
      await addOAuthCredential(home.socket, server, name);
      await loginCredential(home.socket, server, name);
    }
  });

  after(async () => {
    await daemon?.stop('SIGKILL');
    await server?.close();
    home?.cleanup();
  });

  test('every credential survives each kill, or needs a login only when the kill cut its exchange', async () => {
    /** Commits logged by the daemons already killed, and the exchanges cut so far. */
    let commitsOfKilledDaemons = 0;
    let cutSoFar = 0;
    for (let kill = 1; kill <= KILLS; kill += 1) {
      daemon ??= await startDaemon(home);
      const running: DaemonProcess = daemon;
      const errorsBefore = server.events.grantErrors.length;
      // The restarted daemon already logged the refreshes of the previous cycle's checks.
      const logFrom = running.output().length;

      // Continuous refresh: 1-second tokens asked for with the default min_ttl are refreshed at
      // half-life, about twice a second per credential.
      const kw = new KeywardClient({ socketPath: home.socket, timeoutMs: 20_000 });
      let stopped = false;
      const load = CREDENTIALS.flatMap((name) =>
        Array.from({ length: CALLERS }, async () => {
          while (!stopped) {
            await kw.getToken(name).catch(() => sleep(5));
          }
        }),
      );
      const started = Date.now();
      const [lo, hi] = KILL_WINDOW_MS;
      await sleep(lo + Math.random() * (hi - lo));
      running.child.kill('SIGKILL');
      await running.exited;
      const runMs = Date.now() - started;
      stopped = true;
      await Promise.all(load);
      await sleep(SETTLE_MS);

      const logged = refreshesLogged(running.output().slice(logFrom));
      // This daemon's whole output: its start-up checks in the previous cycle included.
      commitsOfKilledDaemons += refreshesLogged(running.output()).count;
      const rotations = server.events.grantSuccess.refresh_token ?? 0;
      const cutTotal = rotations - commitsOfKilledDaemons;
      const cutExchanges = cutTotal - cutSoFar;
      cutSoFar = cutTotal;
      const reusesWhileRunning = reuses(server, errorsBefore);
      const errorsAtRestart = server.events.grantErrors.length;

      daemon = await startDaemon(home);
      const verify = new KeywardClient({ socketPath: home.socket, timeoutMs: 20_000 });
      const cycle: Cycle = {
        runMs,
        cutExchanges,
        exchangeMs: logged.ms,
        needsLogin: [],
        usable: [],
        reusesWhileRunning,
        reusesAfterRestart: 0,
        otherOutcomes: [],
      };
      for (const name of CREDENTIALS) {
        try {
          const token = await verify.getToken(name);
          // A real token of this server's, not yet expired (1 s of leeway: JWT `exp` counts whole
          // seconds from a floored `iat`, so a 1-second token can end up to a second earlier than
          // `expires_in` said).
          await jose.jwtVerify(token.accessToken, jose.createLocalJWKSet(server.jwks), {
            issuer: server.issuer,
            clockTolerance: 1,
          });
          cycle.usable.push(name);
        } catch (err) {
          if (err instanceof KeywardError && err.code === 'LOGIN_REQUIRED') cycle.needsLogin.push(name);
          else cycle.otherOutcomes.push(`${name}: ${(err as Error).message}`);
        }
      }
      cycle.reusesAfterRestart = reuses(server, errorsAtRestart);
      cycles.push(cycle);

      const where = `kill ${kill} after ${runMs} ms`;
      assert.deepEqual(cycle.otherOutcomes, [], `${where}: a credential was lost without a reason`);
      assert.equal(cycle.reusesWhileRunning, 0, `${where}: a refresh token was reused while the daemon ran`);
      assert.ok(
        cycle.cutExchanges >= 0 && cycle.cutExchanges <= CREDENTIALS.length,
        `${where}: ${rotations} rotations at the server in all but ${commitsOfKilledDaemons} commits logged (${cutSoFar} cut in all)`,
      );
      // Each needs_login must come from a reuse of an uncommitted refresh token, and there can be
      // no more of those than exchanges the kill cut.
      assert.equal(
        cycle.needsLogin.length,
        cycle.reusesAfterRestart,
        `${where}: needs_login ${cycle.needsLogin.join(',') || 'none'} but ${cycle.reusesAfterRestart} reuses`,
      );
      assert.ok(
        cycle.reusesAfterRestart <= cycle.cutExchanges,
        `${where}: ${cycle.reusesAfterRestart} reuse(s) after restart but only ${cycle.cutExchanges} cut exchange(s): a committed refresh token was reused`,
      );
      for (const name of cycle.needsLogin) {
        assert.equal((await credentialStatus(home.socket, name))?.state, 'needs_login');
        await loginCredential(home.socket, server, name);
      }
    }
  });

  after(() => {
    const runMs = cycles.reduce((s, c) => s + c.runMs, 0);
    const exchangeMs = cycles.reduce((s, c) => s + c.exchangeMs, 0);
    const needsLogin = cycles.reduce((s, c) => s + c.needsLogin.length, 0);
    const cut = cycles.reduce((s, c) => s + c.cutExchanges, 0);
    // Kills that land inside some credential's exchange, if kill moments were uniform over the runs.
    const expected = cycles.length * (exchangeMs / Math.max(1, runMs));
    recordFaultSummary('kill', {
      kills: cycles.length,
      credentials: CREDENTIALS.length,
      cutExchanges: cut,
      needsLogin,
      expectedInsideExchange: Math.round(expected * 100) / 100,
      exchangeShareOfTime: Math.round((exchangeMs / Math.max(1, runMs)) * 10_000) / 10_000,
      reusesOfCommittedTokens: cycles.reduce(
        (s, c) => s + Math.max(0, c.reusesAfterRestart - c.cutExchanges),
        0,
      ),
      reusesWhileRunning: cycles.reduce((s, c) => s + c.reusesWhileRunning, 0),
      silentLosses: cycles.reduce((s, c) => s + c.otherOutcomes.length, 0),
      refreshesAtServer: server.events.grantSuccess.refresh_token ?? 0,
    });
  });
});
