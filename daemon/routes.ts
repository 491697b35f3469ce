/**
 * The one route table of the socket API, sorted by path, all under `/v1/`. Handlers are thin: they
 * read validated input and delegate to services. Access levels are enforced by the server before
 * a handler runs (see access.ts).
 */
import type {
  AddClientRequest,
  AddCredentialRequest,
  HealthResponse,
  InvalidateRequest,
  LoginRequest,
  RemoveCredentialRequest,
  RotateKeyRequest,
  SetPolicyRequest,
  StatusResponse,
  TokenRequest,
} from '../shared/protocol.js';
import { DEFAULT_MIN_TTL_S } from '../shared/protocol.js';
import { VERSION } from '../shared/version.js';
import type { RouteAccess } from './access.js';
import type { AccessService } from './access-service.js';
import { ApiError } from './api-error.js';
import type { CredentialService } from './credential-service.js';
import * as schemas from './schemas.js';
import { Secret } from './secret.js';

/** What handlers may use. */
export interface RouteContext {
  credentials: CredentialService;
  status(): StatusResponse;
  unlock(passphrase: Secret): Promise<void>;
  /** Clients, policy, audit verification, key rotation (access control). */
  access?: AccessService;
}

/** The validated parts of a request a handler sees. */
export interface RouteInput {
  params: Record<string, string>;
  body: unknown;
}

/** One entry of the route table. */
export interface RouteDefinition {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below `/v1`, in find-my-way syntax. */
  path: string;
  access: RouteAccess;
  /** The audit log's event name: set on every route that serves a token or changes state. */
  audit?: string;
  /** HTTP status of a successful answer (default 200). */
  status?: number;
  schema: { params?: object; body?: object };
  handler(input: RouteInput, ctx: RouteContext): unknown;
}

const body = <T>(input: RouteInput): T => (input.body ?? {}) as T;
const name = (input: RouteInput): string => input.params.name as string;
const accessOf = (ctx: RouteContext): AccessService => {
  if (!ctx.access) throw new ApiError('INTERNAL', 'access control is not set up in this daemon');
  return ctx.access;
};

/** Every route the daemon serves. */
export const ROUTES: readonly RouteDefinition[] = [
  {
    method: 'GET',
    path: '/audit/verify',
    access: 'admin',
    schema: {},
    handler: (_input, ctx) => accessOf(ctx).verifyAudit(),
  },
  {
    method: 'GET',
    path: '/clients',
    access: 'admin',
    schema: {},
    handler: (_input, ctx) => accessOf(ctx).listClients(),
  },
  {
    method: 'POST',
    path: '/clients',
    access: 'admin',
    audit: 'client.add',
    status: 201,
    schema: { body: schemas.addClientBody },
    handler: (input, ctx) => accessOf(ctx).addClient(body<AddClientRequest>(input)),
  },
  {
    method: 'DELETE',
    path: '/clients/:client',
    access: 'admin',
    audit: 'client.remove',
    schema: { params: schemas.clientParams },
    handler: (input, ctx) => accessOf(ctx).removeClient(input.params.client as string),
  },
  {
    method: 'POST',
    path: '/credentials',
    access: 'admin',
    audit: 'credential.add',
    status: 201,
    schema: { body: schemas.addCredentialBody },
    handler: (input, ctx) => ctx.credentials.add(body<AddCredentialRequest>(input)),
  },
  {
    method: 'DELETE',
    path: '/credentials/:name',
    access: 'admin',
    audit: 'credential.remove',
    schema: { params: schemas.nameParams, body: schemas.removeBody },
    handler: (input, ctx) =>
      ctx.credentials.remove(name(input), body<RemoveCredentialRequest>(input).revoke ?? true),
  },
  {
    method: 'POST',
    path: '/credentials/:name/invalidate',
    access: 'credential',
    audit: 'invalidate',
    schema: { params: schemas.nameParams, body: schemas.invalidateBody },
    handler: (input, ctx) =>
      ctx.credentials.invalidate(name(input), body<InvalidateRequest>(input).access_token),
  },
  {
    method: 'POST',
    path: '/credentials/:name/login',
    access: 'admin',
    audit: 'login',
    schema: { params: schemas.nameParams, body: schemas.loginBody },
    handler: (input, ctx) => {
      const { flow, scope } = body<LoginRequest>(input);
      return ctx.credentials.login(name(input), flow, scope);
    },
  },
  {
    method: 'POST',
    path: '/credentials/:name/token',
    access: 'credential',
    audit: 'token',
    schema: { params: schemas.nameParams, body: schemas.tokenBody },
    handler: (input, ctx) =>
      ctx.credentials.getToken(name(input), body<TokenRequest>(input).min_ttl ?? DEFAULT_MIN_TTL_S),
  },
  {
    method: 'GET',
    path: '/flows/:flow_id',
    access: 'admin',
    schema: { params: schemas.flowParams },
    handler: (input, ctx) => ctx.credentials.flowStatus(input.params.flow_id as string),
  },
  {
    method: 'GET',
    path: '/health',
    access: 'public',
    schema: {},
    handler: (): HealthResponse => ({ status: 'ok', version: VERSION }),
  },
  {
    method: 'GET',
    path: '/policy',
    access: 'admin',
    schema: {},
    handler: (_input, ctx) => ({ policy: accessOf(ctx).policy() }),
  },
  {
    method: 'POST',
    path: '/policy',
    access: 'admin',
    audit: 'policy.set',
    schema: { body: schemas.policyBody },
    handler: (input, ctx) => accessOf(ctx).setPolicy(body<SetPolicyRequest>(input).policy),
  },
  {
    method: 'GET',
    path: '/status',
    access: 'admin',
    schema: {},
    handler: (_input, ctx) => ctx.status(),
  },
  {
    method: 'POST',
    path: '/vault/rotate-key',
    access: 'admin',
    audit: 'key.rotate',
    schema: { body: schemas.rotateKeyBody },
    handler: (input, ctx) => accessOf(ctx).rotateKey(body<RotateKeyRequest>(input)),
  },
  {
    method: 'POST',
    path: '/vault/unlock',
    access: 'admin',
    audit: 'vault.unlock',
    schema: { body: schemas.unlockBody },
    handler: async (input, ctx) => {
      const passphrase = Secret.fromString(body<{ passphrase: string }>(input).passphrase);
      try {
        await ctx.unlock(passphrase);
      } finally {
        passphrase.wipe();
      }
      return { unlocked: true };
    },
  },
];
