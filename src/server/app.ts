import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { registerAuth } from './auth/routes.ts';
import { registerApiCompression } from './compress.ts';
import { registerCost } from './cost/routes.ts';
import type { AppDeps } from './deps.ts';
import { sendError } from './errors.ts';
import { registerGateway } from './gateway/routes.ts';
import { registerHealthRoutes } from './health.ts';
import { HTTP_TIMEOUTS, type HttpTimeouts, httpLimitOptions } from './http-limits.ts';
import { registerInputGuards } from './input-guards.ts';
import { registerLimits } from './limits/register.ts';
import { LazyChildLogger } from './logger.ts';
import { registerMetrics } from './metrics/routes.ts';
import { registerUsageRoutes } from './usage/routes.ts';
import { registerWeb } from './web.ts';

// Branches written before AppDeps moved import it from here; new code imports deps.ts.
export type { AppDeps } from './deps.ts';

/** What tests change about the HTTP server (production uses the defaults). */
export interface AppOptions {
  timeouts?: Partial<HttpTimeouts>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A hop count trusts that many addresses nearest the socket (Fastify's own rule for numbers). */
function trustedProxies(
  setting: AppDeps['config']['trustProxy'],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (setting === undefined) return false;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return setting;
}

export async function buildApp(deps: AppDeps, options: AppOptions = {}): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Proxied bodies (chat with images, embeddings batches) can be large (KEYTALLY_MAX_BODY_BYTES);
    // /api/auth routes set smaller limits of their own.
    bodyLimit: deps.config.maxBodyBytes,
    ...httpLimitOptions({ ...HTTP_TIMEOUTS, ...options.timeouts }),
    // Which X-Forwarded-For entries decide request.ip (IP allowlists, login rate limits): none unless
    // KEYTALLY_TRUST_PROXY says, since any client can send the header.
    trustProxy: trustedProxies(deps.config.trustProxy),
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // On shutdown in-flight requests finish, and a request that arrives on an open keep-alive
    // connection is still served, with `connection: close` (graceful-close.ts closes idle ones).
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    // One access line per response (onResponse below) instead of Fastify's two. Through a
    // LogController: the top-level option prints a deprecation warning on every start.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, options) =>
      new LazyChildLogger(logger as unknown as Logger, bindings, options) as unknown as FastifyBaseLogger,
  });
  // A body-less request that still says `content-type: application/json` (generic HTTP clients
  // send it on DELETE) has no body rather than a 400; routes that need a body say which field.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') return done(null, undefined);
    parseJson(request, text, done);
  });
  // Callback-style hooks: they run on every proxied request, and an async hook costs a promise and
  // a microtask turn each (bench/README.md lists these among keytally's per-request extras).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The root logger with the request id: request.log would make a child logger per request.
    deps.logger.info(
      {
        reqId: request.id,
        method: request.method,
        path: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
    done();
  });
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  registerInputGuards(app);

  registerApiCompression(app);
  await registerHealthRoutes(app, deps);
  await registerAuth(app, deps);
  const prices = await registerCost(app, deps);
  await registerLimits(app, deps, prices);
  await registerGateway(app, deps, prices);
  await registerUsageRoutes(app, deps);
  await registerMetrics(app, deps);
  await registerWeb(app);
  return app;
}
