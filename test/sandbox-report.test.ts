/**
 * The daemon's sandbox report read from /proc fixtures (what the kernel prints for a unit with
 * and without systemd's sandboxing), and doctor's verdict on it. The real thing, under a real
 * user manager, is systemd-user-manager.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readUserNamespaceBlockers, sandboxCheck } from '../daemon/doctor/sandbox-check.js';
import {
  coreDumpsAllowed,
  detectManager,
  inUserNamespace,
  mountHolding,
  noNewPrivs,
  parseMountInfo,
  readSandboxReport,
} from '../daemon/service/sandbox-report.js';
import type { ServiceStatus } from '../daemon/service/service-manager.js';
import type { SandboxReport } from '../shared/protocol.js';

// /proc/self/mountinfo of a daemon under ProtectSystem=strict, ProtectHome=read-only, PrivateTmp=.
const SANDBOXED = [
  '520 519 254:0 / / ro,relatime master:1 - ext4 /dev/vda rw',
  '521 520 0:21 / /proc rw,relatime - proc proc rw',
  '530 520 0:40 / /home ro,relatime - tmpfs tmpfs rw,mode=755',
  '531 530 0:40 /me/.local/share/keyward /home/me/.local/share/keyward rw,relatime - tmpfs tmpfs rw',
  '532 520 0:41 / /tmp rw,relatime - tmpfs tmpfs rw',
  '533 532 0:41 /systemd-private-0a1b-keyward.service-Xy/tmp /tmp rw,relatime - tmpfs tmpfs rw',
  '534 520 0:42 / /mnt/with\\040space ro - tmpfs tmpfs rw',
].join('\n');
const PID1 = [
  '30 29 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '31 30 0:41 / /tmp rw,relatime - tmpfs tmpfs rw',
].join('\n');

describe('reading /proc', () => {
  test('the mount holding a path is the longest mount point over it, the last of a stack', () => {
    const mounts = parseMountInfo(SANDBOXED);
    assert.equal(mountHolding(mounts, '/usr/bin')?.options[0], 'ro');
    assert.equal(mountHolding(mounts, '/home/me')?.options[0], 'ro');
    assert.equal(mountHolding(mounts, '/home/me/.local/share/keyward/vault.db')?.options[0], 'rw');
    // Stacked on /tmp: the bind mount from the private directory is what the process sees.
    assert.equal(mountHolding(mounts, '/tmp/x')?.root, '/systemd-private-0a1b-keyward.service-Xy/tmp');
    // /homework is not under /home.
    assert.equal(mountHolding(mounts, '/homework')?.mountPoint, '/');
    assert.equal(mountHolding(mounts, '/mnt/with space/f')?.mountPoint, '/mnt/with space');
  });

  test('no_new_privs, the core limit, the user namespace and the manager come from their /proc lines', () => {
    assert.equal(noNewPrivs('Name:\tnode\nNoNewPrivs:\t1\nSeccomp:\t2\n'), true);
    assert.equal(noNewPrivs('NoNewPrivs:\t0\n'), false);
    assert.equal(noNewPrivs('Name:\tnode\n'), null);
    assert.equal(
      coreDumpsAllowed('Max core file size        0                    0                    bytes\n'),
      false,
    );
    assert.equal(
      coreDumpsAllowed('Max core file size        unlimited            unlimited            bytes\n'),
      true,
    );
    assert.equal(coreDumpsAllowed(undefined), null);
    assert.equal(inUserNamespace('         0          0 4294967295\n'), false);
    assert.equal(inUserNamespace('      1000       1000          1\n'), true);
    const unit = '0::/user.slice/user-1000.slice/user@1000.service/app.slice/keyward.service\n';
    assert.equal(detectManager(unit, {}), 'systemd');
    // A shell in a terminal's unit inherits INVOCATION_ID: it is not keyward's service.
    assert.equal(
      detectManager('0::/user.slice/user-1000.slice/session-2.scope\n', { INVOCATION_ID: 'x' }),
      null,
    );
    assert.equal(detectManager('0::/not-keyward.service\n', {}), null);
    assert.equal(detectManager(undefined, { XPC_SERVICE_NAME: 'dev.keyward.agent' }), 'launchd');
  });

  test('a report from fixtures: read-only /usr, private /tmp, writable KEYWARD_HOME', {
    skip: process.platform !== 'linux',
  }, (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-sandbox-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (file: string, text: string): void => {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    };
    write('self/mountinfo', SANDBOXED);
    write('1/mountinfo', PID1);
    write('self/status', 'NoNewPrivs:\t1\n');
    write('self/limits', 'Max core file size        0                    0                    bytes\n');
    write('self/uid_map', '      1000       1000          1\n');
    write('self/cgroup', '0::/user.slice/user-1000.slice/user@1000.service/app.slice/keyward.service\n');
    const keywardHome = path.join(dir, 'kw');
    fs.mkdirSync(keywardHome);
    const report = readSandboxReport({ home: keywardHome }, { proc: dir, env: {}, homedir: dir });
    assert.deepEqual(report, {
      manager: 'systemd',
      user_namespace: true,
      usr_read_only: true,
      // The fixture cannot make the temp dir read-only: access(2) is real.
      home_writable: true,
      keyward_home_writable: true,
      tmp_private: true,
      no_new_privs: true,
      core_dumps: false,
    });
    // PID 1's /proc unreadable (hidepid=): "cannot tell", not "private".
    fs.rmSync(path.join(dir, '1'), { recursive: true });
    assert.equal(
      readSandboxReport({ home: keywardHome }, { proc: dir, env: {}, homedir: dir })?.tmp_private,
      null,
    );
  });
});

const HELD: SandboxReport = {
  manager: 'systemd',
  user_namespace: true,
  usr_read_only: true,
  home_writable: false,
  keyward_home_writable: true,
  tmp_private: true,
  no_new_privs: true,
  core_dumps: false,
};
const SKIPPED: SandboxReport = {
  ...HELD,
  user_namespace: false,
  usr_read_only: false,
  home_writable: true,
  tmp_private: false,
};
const service = (current: boolean): ServiceStatus => ({
  target: 'systemd',
  installed: true,
  current,
  files: [],
  manager: '/usr/bin/systemctl',
  enabled: true,
  running: true,
  listening: true,
});

describe('doctor: sandbox check', () => {
  test('only for a daemon that runs as keyward.service', () => {
    assert.equal(sandboxCheck(undefined, service(true), []), undefined);
    assert.equal(sandboxCheck({ ...SKIPPED, manager: null }, service(true), []), undefined);
    assert.equal(sandboxCheck({ ...SKIPPED, manager: 'launchd' }, undefined, []), undefined);
  });

  test('in effect: ok', () => {
    const check = sandboxCheck(HELD, service(true), []);
    assert.equal(check?.status, 'ok');
    assert.equal(check?.id, 'sandbox');
  });

  test('skipped: says what is exposed and why, with the fix that applies', () => {
    const kernel = sandboxCheck(SKIPPED, service(true), ['kernel.unprivileged_userns_clone=0 (allow: ...)']);
    assert.equal(kernel?.status, 'warn');
    assert.match(
      kernel?.message ?? '',
      /^not in effect: \/usr is not mounted read-only, your home directory is writable, \/tmp is shared/,
    );
    assert.match(
      kernel?.message ?? '',
      /forbids unprivileged user namespaces \(kernel\.unprivileged_userns_clone=0/,
    );
    const outdated = sandboxCheck(SKIPPED, service(false), []);
    assert.match(outdated?.message ?? '', /installed unit is not the one this keyward writes/);
    assert.equal(outdated?.fix, 'keyward service install');
    const dropIn = sandboxCheck(SKIPPED, service(true), []);
    assert.match(dropIn?.message ?? '', /PrivateUsers= is off/);
    const partial = sandboxCheck({ ...HELD, core_dumps: true, no_new_privs: false }, service(true), []);
    assert.match(partial?.message ?? '', /no_new_privs is not set, core dumps are allowed/);
  });

  test('reads the kernel switches that forbid unprivileged user namespaces', () => {
    const values: Record<string, string> = {
      '/proc/sys/user/max_user_namespaces': '63000\n',
      '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1\n',
    };
    const read = (file: string): string => {
      const v = values[file];
      if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return v;
    };
    assert.deepEqual(readUserNamespaceBlockers(read), [
      'kernel.apparmor_restrict_unprivileged_userns=1 (allow: sysctl kernel.apparmor_restrict_unprivileged_userns=0)',
    ]);
  });
});
