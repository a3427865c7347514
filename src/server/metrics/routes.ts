import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../auth/guards.ts';
import type { AppDeps } from '../deps.ts';
import { metricsFor } from './registry.ts';

/** Prometheus /metrics: admins and legacy keys only (it names models and key ids). */
export async function registerMetrics(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const metrics = metricsFor(deps, deps.recorder);
  app.get('/metrics', async (request, reply) => {
    requireAdmin(request);
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}
