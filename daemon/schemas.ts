/**
 * JSON schemas of the request bodies and parameters. Every object is closed
 * (`additionalProperties: false`) and the server's Ajv is set not to strip unknown fields, so an
 * unknown field is a 400, as contract.md requires.
 */
import { GRANT_TYPES } from '../shared/protocol.js';

const NAME = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } as const;
const URL_STRING = { type: 'string', minLength: 1, maxLength: 2048 } as const;
const SHORT_STRING = { type: 'string', minLength: 1, maxLength: 1024 } as const;

/** `{name}` in the path. */
export const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: NAME },
} as const;

/** `{flow_id}` in the path. */
export const flowParams = {
  type: 'object',
  required: ['flow_id'],
  additionalProperties: false,
  properties: { flow_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,128}$' } },
} as const;

const apiKeyBody = {
  type: 'object',
  required: ['name', 'kind', 'secret'],
  additionalProperties: false,
  properties: {
    name: NAME,
    kind: { const: 'api_key' },
    secret: { type: 'string', minLength: 1, maxLength: 16384 },
    token_type: { type: 'string', pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" },
  },
} as const;

const oauthBody = {
  type: 'object',
  required: ['name', 'kind'],
  additionalProperties: false,
  properties: {
    name: NAME,
    kind: { const: 'oauth' },
    client_id: SHORT_STRING,
    client_secret: { type: 'string', minLength: 1, maxLength: 4096 },
    scope: { type: 'string', maxLength: 2048 },
    resource: URL_STRING,
    grant: { enum: [...GRANT_TYPES] },
    issuer: URL_STRING,
    provider: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
    authorization_url: URL_STRING,
    token_url: URL_STRING,
    device_authorization_url: URL_STRING,
    revocation_url: URL_STRING,
    mcp_server: URL_STRING,
    redirect_port: { type: 'integer', minimum: 1024, maximum: 65535 },
    no_resource: { type: 'boolean' },
  },
} as const;

/** `POST /v1/credentials`. */
export const addCredentialBody = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: [apiKeyBody, oauthBody],
} as const;

/** `DELETE /v1/credentials/{name}`. */
export const removeBody = {
  type: 'object',
  additionalProperties: false,
  properties: { revoke: { type: 'boolean' } },
} as const;

/** `POST /v1/credentials/{name}/token`. */
export const tokenBody = {
  type: 'object',
  additionalProperties: false,
  properties: { min_ttl: { type: 'integer', minimum: 0, maximum: 31_536_000 } },
} as const;

/** `POST /v1/credentials/{name}/invalidate`. */
export const invalidateBody = {
  type: 'object',
  required: ['access_token'],
  additionalProperties: false,
  properties: { access_token: { type: 'string', minLength: 1, maxLength: 16384 } },
} as const;

/** `POST /v1/credentials/{name}/login`. */
export const loginBody = {
  type: 'object',
  required: ['flow'],
  additionalProperties: false,
  properties: {
    flow: { enum: ['authorization_code', 'device_code'] },
    // RFC 6749 §3.3 scope-tokens separated by spaces; the classes are disjoint, so no backtracking.
    scope: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      pattern: '^ *[\\x21\\x23-\\x5b\\x5d-\\x7e]+( +[\\x21\\x23-\\x5b\\x5d-\\x7e]+)* *$',
    },
  },
} as const;

/** `POST /v1/vault/unlock`. */
export const unlockBody = {
  type: 'object',
  required: ['passphrase'],
  additionalProperties: false,
  properties: { passphrase: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

/** `{client}` in the path. */
export const clientParams = {
  type: 'object',
  required: ['client'],
  additionalProperties: false,
  properties: { client: NAME },
} as const;

/** `POST /v1/clients`. */
export const addClientBody = {
  type: 'object',
  required: ['name', 'allow'],
  additionalProperties: false,
  properties: { name: NAME, allow: { type: 'array', minItems: 1, maxItems: 256, items: NAME } },
} as const;

/** `POST /v1/policy`. */
export const policyBody = {
  type: 'object',
  required: ['policy'],
  additionalProperties: false,
  properties: { policy: { enum: ['open', 'strict'] } },
} as const;

/** `POST /v1/vault/rotate-key`. */
export const rotateKeyBody = {
  type: 'object',
  required: ['key_store'],
  additionalProperties: false,
  properties: {
    key_store: { enum: ['file', 'keychain', 'passphrase'] },
    passphrase: { type: 'string', minLength: 1, maxLength: 4096 },
    current_passphrase: { type: 'string', minLength: 1, maxLength: 4096 },
  },
} as const;
