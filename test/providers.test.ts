// The preset table as data: every preset sourced and documented, the help generated from it, and
// the test-only origin rewrite honoured only under KEYWARD_TESTING=1 and only for loopback.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { presetHelp } from '../daemon/cli/commands/add.js';
import { PROVIDER_NAMES, PROVIDERS, resolvePreset } from '../daemon/oauth/providers.js';
import { testOverride } from '../daemon/test-overrides.js';
import { SCRIPTS } from './fixtures/provider-replay/scripts.js';
import { REPO_ROOT } from './helpers/daemon-process.js';

const ENDPOINTS = [
  'authorizationEndpoint',
  'tokenEndpoint',
  'deviceAuthorizationEndpoint',
  'revocationEndpoint',
] as const;

test('every preset names its documentation and uses https endpoints only', () => {
  for (const name of PROVIDER_NAMES) {
    const preset = PROVIDERS[name];
    assert.equal(preset.name, name);
    assert.ok(preset.docs.length > 0, `${name} has documentation links`);
    for (const link of preset.docs) assert.match(link, /^https:\/\//, `${name}: ${link}`);
    for (const field of ENDPOINTS) {
      const value = preset[field];
      if (value !== null) assert.match(value, /^https:\/\/[^/]+\//, `${name}.${field}`);
    }
  }
});

test('every preset has a replay script and a row in docs/providers.md, and --help lists it', () => {
  const docs = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'providers.md'), 'utf8');
  const help = presetHelp();
  for (const name of PROVIDER_NAMES) {
    assert.equal(SCRIPTS[name].preset, name);
    assert.ok(Object.values(SCRIPTS[name].source).every((url) => url.startsWith('https://')));
    assert.match(docs, new RegExp(`^\\| \`${name}\` \\|`, 'm'), `docs/providers.md has a row for ${name}`);
    assert.match(help, new RegExp(`^  ${name} +\\S`, 'm'), `--help lists ${name}`);
  }
});

test('KEYWARD_TEST_* settings are honoured only with KEYWARD_TESTING=1', () => {
  const origin = 'http://127.0.0.1:4567';
  assert.equal(
    testOverride('KEYWARD_TEST_PROVIDER_ORIGIN', { KEYWARD_TEST_PROVIDER_ORIGIN: origin }),
    undefined,
  );
  assert.equal(
    testOverride('KEYWARD_TEST_PROVIDER_ORIGIN', {
      KEYWARD_TESTING: 'yes',
      KEYWARD_TEST_PROVIDER_ORIGIN: origin,
    }),
    undefined,
  );
  assert.equal(
    testOverride('KEYWARD_TEST_PROVIDER_ORIGIN', {
      KEYWARD_TESTING: '1',
      KEYWARD_TEST_PROVIDER_ORIGIN: origin,
    }),
    origin,
  );
  assert.equal(resolvePreset('google', { KEYWARD_TEST_PROVIDER_ORIGIN: origin }), PROVIDERS.google);
});

test('the replay origin replaces every endpoint origin and keeps paths and templates', () => {
  const env = { KEYWARD_TESTING: '1', KEYWARD_TEST_PROVIDER_ORIGIN: 'http://127.0.0.1:4567' };
  for (const name of PROVIDER_NAMES) {
    const rewritten = resolvePreset(name, env);
    for (const field of ENDPOINTS) {
      const original = PROVIDERS[name][field];
      const value = rewritten[field];
      if (original === null) {
        assert.equal(value, null);
        continue;
      }
      assert.ok(value?.startsWith('http://127.0.0.1:4567/'), `${name}.${field}: ${value}`);
      assert.equal(value?.slice('http://127.0.0.1:4567'.length), original.replace(/^https:\/\/[^/]+/, ''));
    }
  }
  assert.match(
    resolvePreset('github', env).revocationEndpoint ?? '',
    /\/applications\/\{client_id\}\/grant$/,
  );
});

test('a replay origin that is not loopback is refused', () => {
  for (const origin of ['https://evil.example', 'http://10.0.0.1:80', 'http://127.0.0.1:80/path']) {
    assert.throws(
      () => resolvePreset('github', { KEYWARD_TESTING: '1', KEYWARD_TEST_PROVIDER_ORIGIN: origin }),
      /loopback/,
      origin,
    );
  }
});
