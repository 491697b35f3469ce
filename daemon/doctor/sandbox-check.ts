/**
 * Doctor's sandbox check: the sandbox the running service reports from the inside (`sandbox` in
 * `GET /v1/status`), not what the unit file asks for. A systemd user manager applies
 * `ProtectSystem=`, `ProtectHome=`, `PrivateTmp=` and `ReadWritePaths=` only inside a user
 * namespace (`PrivateUsers=yes`), and skips them without a word when it cannot make one.
 */
import fs from 'node:fs';
import type { SandboxReport } from '../../shared/protocol.js';
import type { ServiceStatus } from '../service/service-manager.js';
import { type CheckResult, ok, warn } from './check-result.js';

/** Kernel switches that forbid unprivileged user namespaces: file, name, and the value that blocks. */
const USERNS_SWITCHES: readonly { file: string; name: string; blocks: string; off: string }[] = [
  { file: '/proc/sys/user/max_user_namespaces', name: 'user.max_user_namespaces', blocks: '0', off: '15000' },
  // Debian's and older Ubuntu's own switch.
  {
    file: '/proc/sys/kernel/unprivileged_userns_clone',
    name: 'kernel.unprivileged_userns_clone',
    blocks: '0',
    off: '1',
  },
  // Ubuntu 24.04's AppArmor restriction.
  {
    file: '/proc/sys/kernel/apparmor_restrict_unprivileged_userns',
    name: 'kernel.apparmor_restrict_unprivileged_userns',
    blocks: '1',
    off: '0',
  },
];

/** Returns `name=value` for each kernel switch set to forbid unprivileged user namespaces here. */
export function readUserNamespaceBlockers(read = (file: string) => fs.readFileSync(file, 'utf8')): string[] {
  const found: string[] = [];
  for (const sw of USERNS_SWITCHES) {
    let value: string;
    try {
      value = read(sw.file).trim();
    } catch {
      continue;
    }
    if (value === sw.blocks) found.push(`${sw.name}=${value} (allow: sysctl ${sw.name}=${sw.off})`);
  }
  return found;
}

const RESTART = 'systemctl --user restart keyward.service';

function why(
  report: SandboxReport,
  service: ServiceStatus | undefined,
  blockers: readonly string[],
): { reason: string; fix: string } {
  if (report.user_namespace !== false) {
    return {
      reason: "the user manager did not apply the unit's sandboxing",
      fix: 'look for a drop-in that turns it off (systemctl --user cat keyward.service) and for errors (journalctl --user -u keyward)',
    };
  }
  const without =
    'keyward.service runs without a user namespace, and a user manager skips PrivateTmp=, ProtectSystem= and ProtectHome= without one';
  if (service?.installed && !service.current) {
    return {
      reason: `${without}: the installed unit is not the one this keyward writes`,
      fix: 'keyward service install',
    };
  }
  if (blockers.length > 0) {
    return {
      reason: `${without}: this kernel forbids unprivileged user namespaces (${blockers.join('; ')})`,
      fix: `allow them, then: ${RESTART} (or accept an unsandboxed service: see docs/service.md "Hardening")`,
    };
  }
  return {
    reason: `${without}: PrivateUsers= is off, or this systemd cannot apply it to a user service`,
    fix: `systemctl --user cat keyward.service: remove a drop-in that sets PrivateUsers=no, then: ${RESTART}`,
  };
}

/**
 * Judges the running daemon's own sandbox report; undefined when the daemon does not run as
 * keyward's systemd service (started by hand, launchd, an older daemon): nothing to check then.
 */
export function sandboxCheck(
  report: SandboxReport | undefined,
  service: ServiceStatus | undefined,
  blockers: readonly string[],
): CheckResult | undefined {
  if (report?.manager !== 'systemd') return undefined;
  const title = 'sandbox (systemd)';
  // Each property: the value that means "protected", what is wrong otherwise, and what null means.
  const expectations: [boolean | null, boolean, string, string][] = [
    [report.usr_read_only, true, '/usr is not mounted read-only', 'whether /usr is read-only'],
    [report.home_writable, false, 'your home directory is writable', 'whether your home is writable'],
    [report.tmp_private, true, '/tmp is shared with every other process', 'whether /tmp is private'],
    [report.no_new_privs, true, 'no_new_privs is not set', 'whether no_new_privs is set'],
    [report.core_dumps, false, 'core dumps are allowed', 'whether core dumps are allowed'],
    [report.keyward_home_writable, true, 'KEYWARD_HOME is not writable (tokens cannot be saved)', ''],
  ];
  const broken = expectations
    .filter(([value, wanted]) => value !== wanted)
    .map(([value, , wrong, unknown]) => (value === null ? `cannot tell ${unknown}` : wrong));
  if (broken.length === 0) {
    return ok(
      'sandbox',
      title,
      'in effect, seen from inside the daemon: /usr read-only, home read-only outside KEYWARD_HOME, private /tmp, no new privileges, no core dumps',
    );
  }
  const { reason, fix } = why(report, service, blockers);
  return warn('sandbox', title, `not in effect: ${broken.join(', ')}; ${reason}`, fix);
}
