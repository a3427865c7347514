import type { FastifyInstance } from 'fastify';
import type { PriceBook } from '../cost/price-book.ts';
import type { AppDeps } from '../deps.ts';
import { UpstreamError } from '../errors.ts';
import { limitsOf } from '../limits/register.ts';
import { metricsFor } from '../metrics/registry.ts';
import { allowsModel, registerFeatureRoute } from './access.ts';
import { registerCountTokens } from './count-tokens.ts';
import { createDemoUpstream } from './demo.ts';
import { listModels } from './models.ts';
import { registerOllamaRoutes } from './ollama.ts';
import { INFERENCE_ENDPOINTS, type ProxyDeps, proxyInference, UpstreamSet } from './proxy.ts';
import { upstreamConfigs } from './upstream-config.ts';
import { createHttpUpstream } from './upstreams.ts';

/** True when no upstream is configured and the built-in demo model is served. */
export function servesDemoModel(deps: Pick<AppDeps, 'config'>): boolean {
  return !deps.config.configFile && !deps.config.upstreamUrl;
}

/**
 * The OpenAI-compatible proxy: every inference route with and without `/v1`, and the merged
 * model list; Ollama's native API (ollama.ts) and Anthropic's count_tokens (count-tokens.ts).
 * Upstreams are validated here, at start-up (a bad KEYTALLY_CONFIG stops the process).
 */
export async function registerGateway(app: FastifyInstance, deps: AppDeps, prices: PriceBook): Promise<void> {
  const configs = upstreamConfigs(deps.config);
  const demo = configs.length === 0;
  const upstreams = new UpstreamSet(
    demo
      ? [createDemoUpstream(deps.config.upstreamTimeoutMs)]
      : configs.map((upstream) => createHttpUpstream(upstream, deps.config.upstreamTimeoutMs)),
    demo,
  );
  const metrics = metricsFor(deps, deps.recorder);
  const proxyDeps: ProxyDeps = {
    upstreams,
    recorder: deps.recorder,
    metrics,
    now: deps.now ?? Date.now,
    limits: limitsOf(deps.config),
    prices,
  };
  app.addHook('onClose', async () => {
    await Promise.all(upstreams.upstreams.map((upstream) => upstream.close()));
  });
  // Every request is counted, recorded or not (decisions.md section 5).
  // Callback-style hooks: an async hook costs a promise and a microtask turn on every request.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.countRequest(
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      request.auth?.source ?? 'none',
    );
    done();
  });
  for (const endpoint of INFERENCE_ENDPOINTS) {
    for (const prefix of ['/v1', '']) {
      app.post(`${prefix}${endpoint}`, (request, reply) =>
        proxyInference(proxyDeps, endpoint, request, reply),
      );
    }
  }
  registerOllamaRoutes(app, proxyDeps);
  registerCountTokens(app, proxyDeps);

  registerFeatureRoute(app, upstreams);
  for (const path of ['/v1/models', '/models']) {
    app.get(path, async (request, reply) => {
      const started = reply.elapsedTime;
      const list = await listModels(upstreams);
      for (const failure of list.failed) {
        request.log.warn({ upstream: failure.name, error: failure.error }, 'could not list upstream models');
      }
      if (list.data.length === 0 && list.failed.length === upstreams.upstreams.length) {
        throw new UpstreamError(
          502,
          `Cannot list models: no upstream answered (${list.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}); check KEYTALLY_UPSTREAM_URL.`,
        );
      }
      reply.header('x-keytally-overhead-ms', (reply.elapsedTime - started).toFixed(2));
      // Only the models the caller may use (owner's and key's allowlists).
      const auth = request.auth;
      return { object: 'list', data: list.data.filter((entry) => allowsModel(auth, entry.id)) };
    });
  }
}
