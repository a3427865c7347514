import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

/** The OpenAI-compatible proxy routes (Gateway issue). */
export async function registerGateway(_app: FastifyInstance, _deps: AppDeps): Promise<void> {}
