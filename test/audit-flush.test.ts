/**
 * contract.md "Security (v2)": the audit log cannot be flushed. The attacks, against the real
 * daemon and CLI: (1) a flood of refused requests without a token, varied so that no two look
 * alike, tries to rotate the admin events out of the log (the rotation size is scaled down with
 * KEYWARD_TEST_AUDIT_MAX_BYTES so that a few thousand requests would be enough); (2) lines cut
 * from the end of the log and the daemon killed with SIGKILL at once, before it saved the end of
 * the chain in the vault (it used to do so only every 5 s).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { COALESCE_MAX_KINDS, RefusalCoalescer } from '../daemon/audit-coalescer.js';
import {
  type DaemonProcess,
  makeHome,
  runCli,
  socketRequest,
  startDaemon,
  type TestHome,
} from './helpers/daemon-process.js';

/** Runs `count` requests, `inFlight` at a time. */
async function flood(count: number, inFlight: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await one(next++);
    }),
  );
}

async function auditJson(home: TestHome): Promise<Array<Record<string, any>>> {
  const res = await runCli(home, ['audit', '--json']);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('a flood of refused requests cannot flush the audit log', () => {
  test('admin events survive rotation, refusals are counted, --verify reports the rotated lines', async () => {
    // One coalescing window for the whole test (the default is 10 s), so the counts are exact.
    const home = makeHome({
      KEYWARD_TESTING: '1',
      KEYWARD_TEST_AUDIT_MAX_BYTES: '2048',
      KEYWARD_TEST_AUDIT_WINDOW_MS: '600000',
    });
    const daemon = await startDaemon(home);
    try {
      const add = await runCli(home, ['add', 'gh', '--api-key'], { input: 'sk-audit-flush' });
      assert.equal(add.code, 0, add.stderr);
      const strict = await runCli(home, ['policy', 'set', 'strict']);
      assert.equal(strict.code, 0, strict.stderr);

      // 1000 refusals that each name another credential, then 200 identical ones.
      const refused = async (name: string) => {
        const res = await socketRequest(home.socket, 'POST', `/v1/credentials/${name}/token`, { body: {} });
        assert.equal(res.status, 401);
      };
      await flood(1000, 20, (i) => refused(`c${i}`));
      await flood(200, 20, () => refused('same'));

      const entries = await auditJson(home);
      const events = entries.map((e) => e.event);
      assert.ok(events.includes('credential.add'), `credential.add was flushed out: ${events.join(' ')}`);
      assert.ok(events.includes('policy.set'));
      const lastSeq = entries.at(-1)?.seq as number;
      // 1200 refusals, one window: at most 2 * 32 + 1 lines.
      assert.ok(lastSeq <= 2 + 65, `${lastSeq} lines were written for 1200 refusals`);

      const verify = await runCli(home, ['audit', '--verify', '--json']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const result = JSON.parse(verify.stdout);
      assert.equal(result.intact, true);
      assert.ok(result.rotated > 0, 'the log rotated');
      assert.equal(
        result.rotated + result.lines,
        lastSeq,
        'every line is either retained or counted as rotated',
      );
      assert.equal(result.rotated_admin, 2, 'credential.add and policy.set were rotated out and kept');
      assert.equal(result.admin_file, path.join(home.home, 'audit.log.admin'));
      const text = await runCli(home, ['audit', '--verify']);
      assert.match(
        text.stdout,
        new RegExp(
          `^audit log intact: ${result.lines} lines \\(.*\\); ${result.rotated} earlier lines left by rotation \\(2 admin events among them kept in .*audit\\.log\\.admin\\)\\n$`,
        ),
      );
    } finally {
      await daemon.stop();
    }
    const daemonOutput = daemon.output();
    // At shutdown the counts are written: the repeats and the refusals past the kinds' limit.
    const entries = await auditJson(home);
    // 1200 refusals of 1001 kinds: 32 kinds had a line each; the other 1168 refusals (past the
    // 32nd kind, the 200 alike included) share the last line, written at shutdown.
    const overflow = entries.filter((e) => e.event === 'audit.coalesced');
    assert.deepEqual(
      overflow.map((e) => e.count),
      [1000 + 200 - 32],
    );
    assert.ok(
      overflow.length === 1,
      entries
        .slice(-8)
        .map((e) => `${e.seq} ${e.event} ${e.credential} ${e.count}`)
        .join('\n') +
        daemonOutput
          .split('\n')
          .filter((l) => /"level":[456]/.test(l))
          .join('\n'),
    );
    const table = await runCli(home, ['audit']);
    assert.match(table.stdout, /credential\.add/);
    assert.match(table.stdout, /audit\.coalesced .* denied x1168/);
    home.cleanup();
  });
});

describe('cutting the end of the log and killing the daemon', () => {
  async function cutAndKill(options: { removeHead?: boolean }): Promise<{ home: TestHome; verify: string }> {
    const home = makeHome();
    const daemon = await startDaemon(home);
    try {
      return await cutKillVerify(home, daemon, options);
    } finally {
      daemon.child.kill('SIGKILL');
    }
  }

  async function cutKillVerify(
    home: TestHome,
    first: DaemonProcess,
    options: { removeHead?: boolean },
  ): Promise<{ home: TestHome; verify: string }> {
    let daemon = first;
    const add = await runCli(home, ['add', 'gh', '--api-key'], { input: 'sk-audit-cut' });
    assert.equal(add.code, 0, add.stderr);
    for (let i = 0; i < 5; i++) {
      const res = await socketRequest(home.socket, 'POST', '/v1/credentials/gh/token', { body: {} });
      assert.equal(res.status, 200);
    }
    await sleep(100);
    const file = path.join(home.home, 'audit.log');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    assert.equal(lines.length, 6);
    fs.writeFileSync(file, `${lines.slice(0, -2).join('\n')}\n`);
    if (options.removeHead) fs.rmSync(path.join(home.home, 'audit.log.head'), { force: true });
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    daemon = await startDaemon(home);
    try {
      const verify = await runCli(home, ['audit', '--verify']);
      assert.equal(verify.code, 1, verify.stdout);
      return { home, verify: verify.stdout };
    } finally {
      await daemon.stop();
    }
  }

  test('cut the last two lines, kill -9 at once, restart: --verify names the cut', async () => {
    const { home, verify } = await cutAndKill({});
    assert.match(verify, /the log ends at seq 4 but seq 6 was written: the last lines were removed/);
    home.cleanup();
  });

  test('removing the head record as well is reported too', async () => {
    const { home, verify } = await cutAndKill({ removeHead: true });
    assert.match(verify, /audit\.log\.head\) is missing: lines may have been cut from the end/);
    home.cleanup();
  });
});

test('the coalescer: first of a kind written, repeats counted, kinds past the limit share one line', () => {
  const windows: number[] = [];
  const c = new RefusalCoalescer({ onWindowEnd: () => windows.push(1), windowMs: 60_000 });
  const refusal = (credential: string, pid: number) => ({
    event: 'token',
    credential,
    caller: 'anonymous' as const,
    peer: { pid, uid: 1000, exe: '/usr/bin/node' },
    outcome: 'denied' as const,
    code: 'UNAUTHENTICATED',
  });
  assert.equal(c.offer(refusal('a', 1)), true);
  for (let i = 0; i < 9; i++) assert.equal(c.offer(refusal('a', 1)), false);
  assert.equal(c.offer(refusal('a', 2)), false, 'another process, same kind');
  let written = 1;
  for (let i = 0; i < 100; i++) if (c.offer(refusal(`n${i}`, 1))) written++;
  assert.equal(written, COALESCE_MAX_KINDS);
  const drained = c.drain();
  assert.deepEqual(
    drained.map((d) => [d.event.event, d.event.credential ?? null, d.event.peer?.pid ?? null, d.count]),
    [
      ['token', 'a', null, 10],
      ['audit.coalesced', null, null, 100 - (COALESCE_MAX_KINDS - 1)],
    ],
  );
  // A new window: the kind is written again, once.
  assert.equal(c.offer(refusal('a', 1)), true);
  assert.deepEqual(c.drain(), []);
  c.stop();
});

test('attack: the audit chain record deleted from the vault: the log is set aside and --verify keeps saying so', async () => {
  const home = makeHome();
  let daemon: DaemonProcess | undefined = await startDaemon(home);
  try {
    const add = await runCli(home, ['add', 'github', '--api-key'], { input: 'ghp_audit_reset\n' });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await daemon.stop(), 0);
    daemon = undefined;

    // Offline: drop the last line of the log, and the chain record that would show the cut.
    const log = path.join(home.home, 'audit.log');
    const lines = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
    fs.writeFileSync(log, `${lines.slice(0, -1).join('\n')}\n`);
    const db = new Database(path.join(home.home, 'vault.db'));
    try {
      assert.equal(db.prepare("DELETE FROM kv WHERE key = 'audit.chain'").run().changes, 1);
    } finally {
      db.close();
    }

    daemon = await startDaemon(home);
    for (let i = 0; i < 2; i += 1) {
      const verify = await runCli(home, ['audit', '--verify']);
      assert.equal(
        verify.code,
        1,
        `--verify must not call a restarted chain intact: ${verify.stdout}${verify.stderr}`,
      );
      assert.match(`${verify.stdout}${verify.stderr}`, /saved audit chain failed to authenticate/);
      // And it keeps saying so after another restart.
      assert.equal(await daemon.stop(), 0);
      daemon = await startDaemon(home);
    }
    const kept = fs.readdirSync(home.home).filter((f) => f.startsWith('audit.log.orphan-'));
    assert.ok(kept.length > 0, 'the tampered log is kept aside, not deleted');
  } finally {
    await daemon?.stop();
    home.cleanup();
  }
});
