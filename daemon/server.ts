/**
 * The socket API server: fastify with the contract's limits and error shape. Builds the app from
 * the route table; listening (socket path, inherited fd) is in listener.ts.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { isErrorCode } from '../shared/errors.js';
import { API_PREFIX, MAX_BODY_BYTES } from '../shared/protocol.js';
import type { AccessControl, Caller } from './access.js';
import { ApiError } from './api-error.js';
import type { Logger } from './log.js';
import { ROUTES, type RouteContext, type RouteDefinition } from './routes.js';
import {
  CONNECTIONS_CHECKING_INTERVAL_MS,
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  maxConnectionsFor,
  openFileLimit,
  REQUEST_TIMEOUT_MS,
} from './socket-limits.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** What the server needs. */
export interface ServerDeps {
  ctx: RouteContext;
  access: AccessControl;
  log: Logger;
  /** Called once per request to a route with an `audit` name (tokens, admin changes), for the audit log. */
  onAuditedRoute?: (event: AuditedRouteEvent) => void;
}

/** One request to an audited route, as it ended. */
export interface AuditedRouteEvent {
  request: FastifyRequest;
  route: RouteDefinition;
  /** The credential named in the path, if any. */
  credential: string | undefined;
  outcome: 'ok' | 'denied' | 'error';
  code?: string;
  /** When the handler started (ms since the epoch), for requests that reached it. */
  startedAt?: number;
}

function send(reply: FastifyReply, error: ApiError): FastifyReply {
  return reply.code(error.status).type('application/json').send(error.toBody());
}

/** Translates anything thrown inside a request into the contract's error shape. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & {
    validation?: Array<{
      keyword: string;
      instancePath: string;
      params: Record<string, unknown>;
      message?: string;
    }>;
    validationContext?: string;
  };
  if (e.validation)
    return new ApiError('INVALID_REQUEST', describeValidation(e.validation, e.validationContext));
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('INVALID_REQUEST', 'send the body as JSON with "content-type: application/json"');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('INVALID_REQUEST', 'the body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('INVALID_REQUEST', 'the content-length header does not match the body');
    default:
      break;
  }
  if (err instanceof SyntaxError) return new ApiError('INVALID_REQUEST', 'the body is not valid JSON');
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413)
    return new ApiError('PAYLOAD_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  if (status >= 400 && status < 500) return new ApiError('INVALID_REQUEST', 'the request is malformed');
  return new ApiError('INTERNAL', 'internal error in the keyward daemon: see its log, and please report it');
}

function describeValidation(
  errors: Array<{ keyword: string; instancePath: string; params: Record<string, unknown>; message?: string }>,
  context = 'body',
): string {
  const first = errors[0];
  if (!first) return `invalid ${context}`;
  const where = first.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : context;
  if (first.keyword === 'additionalProperties') {
    return `unknown field "${String(first.params.additionalProperty)}" in the request ${context}`;
  }
  if (first.keyword === 'required')
    return `missing field "${String(first.params.missingProperty)}" in the request ${context}`;
  if (where === 'name' || (context === 'params' && first.instancePath === '/name')) {
    return 'bad credential name: names are 1-64 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit';
  }
  if (first.keyword === 'discriminator') return 'field "kind" must be "api_key" or "oauth"';
  return `${where} ${first.message ?? 'is invalid'}`;
}

/** Builds the fastify app serving the route table. */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request log lines would be noise at thousands of token requests a second.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    // A client that never finishes its request must not hold a connection (socket-limits.ts).
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    },
    // Ajv strips unknown fields by default; the contract wants them rejected.
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        discriminator: true,
        allErrors: false,
      },
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    frameworkErrors: (err, _req, reply) => {
      send(reply, toApiError(err));
    },
    // Bytes that are not HTTP at all, or a request that did not arrive in time, never reach a
    // route; answer them in the contract's shape too, then close: a half-closed socket whose
    // peer never closes its side would hold a connection slot forever.
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      const apiError =
        code === 'HPE_HEADER_OVERFLOW'
          ? new ApiError('PAYLOAD_TOO_LARGE', 'request headers are too large')
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new ApiError('INVALID_REQUEST', 'the request did not arrive in time')
            : new ApiError('INVALID_REQUEST', 'the request is not valid HTTP/1.1');
      const body = JSON.stringify(apiError.toBody());
      socket.end(
        `HTTP/1.1 ${apiError.status} ${apiError.status === 413 ? 'Payload Too Large' : 'Bad Request'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
    },
  });

  // Past the cap, new connections are closed at once: better than running out of descriptors.
  app.server.maxConnections = maxConnectionsFor(openFileLimit());

  // An empty body means `{}`: `POST .../token` with nothing to say is a normal request.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const source = typeof text === 'string' ? text : text.toString('utf8');
    if (source.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(source));
    } catch {
      done(new ApiError('INVALID_REQUEST', 'the body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    // A browser can be tricked into sending requests to local sockets via proxies and
    // DNS rebinding; nothing legitimate sends Origin or Referer to this API.
    if (request.headers.origin !== undefined || request.headers.referer !== undefined) {
      return send(
        reply,
        new ApiError('FORBIDDEN', 'requests from a browser (with Origin or Referer) are refused'),
      );
    }
    try {
      request.caller = deps.access.identify(request.headers.authorization);
    } catch (err) {
      // An unknown or revoked token asking for a token is exactly what the audit log is for.
      const route = (request.routeOptions.config as { route?: RouteDefinition } | undefined)?.route;
      if (route?.audit !== undefined) {
        const credential = (request.params as Record<string, string> | undefined)?.name;
        deps.onAuditedRoute?.({ request, route, credential, outcome: 'denied', code: toApiError(err).code });
      }
      throw err;
    }
    return undefined;
  });

  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err);
    if (apiError.code === 'INTERNAL') request.log.error({ err }, 'request failed');
    return send(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    send(
      reply,
      new ApiError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}: see contract.md`),
    ),
  );

  for (const route of ROUTES) registerRoute(app, route, deps);
  return app;
}

function registerRoute(app: FastifyInstance, route: RouteDefinition, deps: ServerDeps): void {
  app.route({
    method: route.method,
    url: `${API_PREFIX}${route.path}`,
    schema: route.schema,
    config: { route },
    // Access is checked before validation so that an unauthorised caller learns nothing from
    // validation messages.
    onRequest: async (request) => {
      const credential = (request.params as Record<string, string> | undefined)?.name;
      try {
        deps.access.authorize(request.caller ?? { kind: 'anonymous' }, route.access, credential);
      } catch (err) {
        if (route.audit !== undefined) {
          deps.onAuditedRoute?.({
            request,
            route,
            credential,
            outcome: 'denied',
            code: (err as ApiError).code,
          });
        }
        throw err;
      }
    },
    handler: async (request, reply) => {
      const input = { params: (request.params ?? {}) as Record<string, string>, body: request.body };
      const credential = input.params.name;
      const startedAt = Date.now();
      try {
        const result = await route.handler(input, deps.ctx);
        if (route.audit !== undefined) {
          deps.onAuditedRoute?.({ request, route, credential, outcome: 'ok', startedAt });
        }
        return reply.code(route.status ?? 200).send(result);
      } catch (err) {
        if (route.audit !== undefined) {
          const code = toApiError(err).code;
          deps.onAuditedRoute?.({
            request,
            route,
            credential,
            outcome: 'error',
            code: isErrorCode(code) ? code : 'INTERNAL',
            startedAt,
          });
        }
        throw err;
      }
    },
  });
}
