import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

/** The usage and sources endpoints (Usage API issue). */
export async function registerUsageRoutes(_app: FastifyInstance, _deps: AppDeps): Promise<void> {}
