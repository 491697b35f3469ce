/**
 * The pure parts of remote MCP server discovery: reading the RFC 6750 `WWW-Authenticate`
 * challenge, the canonical server URI (MCP authorization), and where RFC 9728 metadata is looked
 * for; plus what `keyward/mcp` loads when imported (no package at all: the MCP SDK is a peer,
 * referred to for types only).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalServerUri, wellKnownMetadataUrls } from '../daemon/oauth/mcp-discovery.js';
import { parseBearerChallenge } from '../shared/www-authenticate.js';
import { foreignModules, modulesLoadedBy } from './helpers/module-loads.js';

test('parseBearerChallenge reads the Bearer parameters, quoted or not, among other schemes', () => {
  assert.deepEqual(
    parseBearerChallenge(
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read files:write"',
    ),
    {
      resource_metadata: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      scope: 'files:read files:write',
    },
  );
  assert.deepEqual(
    parseBearerChallenge(
      'Basic realm="x", Bearer error=invalid_token, error_description="a \\"quoted\\" word"',
    ),
    { error: 'invalid_token', error_description: 'a "quoted" word' },
  );
  assert.deepEqual(parseBearerChallenge('bearer Realm="api"'), { realm: 'api' });
  assert.deepEqual(parseBearerChallenge('Negotiate abc123==, Bearer scope="a"'), { scope: 'a' });
  assert.deepEqual(parseBearerChallenge('Bearer'), {});
  assert.equal(parseBearerChallenge('Basic realm="only basic"'), undefined);
  assert.equal(parseBearerChallenge(null), undefined);
});

test('canonicalServerUri lower-cases scheme and host and drops a lone trailing slash and the fragment', () => {
  assert.equal(canonicalServerUri('HTTPS://MCP.Example.com/'), 'https://mcp.example.com');
  assert.equal(canonicalServerUri('https://mcp.example.com/mcp'), 'https://mcp.example.com/mcp');
  assert.equal(
    canonicalServerUri('https://mcp.example.com:8443/a/b?x=1#frag'),
    'https://mcp.example.com:8443/a/b?x=1',
  );
  assert.equal(canonicalServerUri('https://mcp.example.com:443/mcp'), 'https://mcp.example.com/mcp');
});

test('wellKnownMetadataUrls tries the path-inserted location before the root (RFC 9728 §3.1)', () => {
  assert.deepEqual(wellKnownMetadataUrls('https://mcp.example.com/public/mcp'), [
    'https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp',
    'https://mcp.example.com/.well-known/oauth-protected-resource',
  ]);
  assert.deepEqual(wellKnownMetadataUrls('https://mcp.example.com'), [
    'https://mcp.example.com/.well-known/oauth-protected-resource',
  ]);
});

test('importing keyward/mcp loads no package at run time', () => {
  const loaded = modulesLoadedBy('keyward/mcp', ['keywardFetch', 'KeywardOAuthProvider']);
  assert.ok(
    loaded.some((u) => u.endsWith('/dist/client/mcp.js')),
    loaded.join('\n'),
  );
  assert.deepEqual(foreignModules(loaded), []);
});
