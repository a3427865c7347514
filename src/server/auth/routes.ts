import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { registerAuthHook } from './hook.ts';

/** The auth hook and the /api/auth/* routes (Identity issue). */
export async function registerAuth(app: FastifyInstance, deps: AppDeps): Promise<void> {
  await registerAuthHook(app, deps);
}
