/**
 * keyward's side of the mcp-remote comparison (bench/compare-mcp-remote.ts), as a test so the
 * README's claim can fail: three MCP host processes, each running `keyward proxy` for the same
 * server (the MCP SDK's server behind oidc-provider with refresh-token rotation, reuse detection
 * and 5-second access tokens), each calling a tool every 250 ms across two expiries. Every call is
 * served; refreshes stay within keyward's policy (a token is refreshed once less than half its
 * lifetime is left: at most two per lifetime, whatever the number of proxies); no `grant.error`
 * (a second use of a rotated refresh token would revoke the grant); no token in clear in any
 * file under KEYWARD_HOME or on the proxies' stderr; and `keyward remove` revokes the grant.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measure } from '../bench/proxy-load.js';

test('three hosts through keyward proxy across two expiries: one refresher, nothing in clear, remove revokes', async () => {
  const result = await measure('keyward', { hosts: 3, expiries: 2, ttlSeconds: 5, intervalMs: 250 });
  const summary = JSON.stringify(result);
  assert.ok(result.calls >= 3 * 2 * 5, `too few calls to mean anything: ${summary}`);
  assert.equal(result.failedCalls, 0, summary);
  assert.deepEqual(result.grantErrors, [], summary);
  assert.equal(result.loginPrompts, 0, summary);
  // At most two per lifetime (the half-life rule; one more where the window starts mid-lifetime),
  // not one per proxy or per call.
  assert.ok(result.refreshes >= 1, `no refresh across two expiries: ${summary}`);
  assert.ok(result.refreshes <= 2 * result.expiries + 1, `too many refreshes: ${summary}`);
  assert.equal(result.tokensInClearOnDisk, 0, summary);
  assert.equal(result.tokensOnStderr, 0, summary);
  assert.equal(result.removalRevokes, true, summary);
});
