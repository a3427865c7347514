import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

/** Prometheus /metrics (Gateway issue). */
export async function registerMetrics(_app: FastifyInstance, _deps: AppDeps): Promise<void> {}
