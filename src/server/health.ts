import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { AppDeps } from './deps.ts';

const READY_TIMEOUT_MS = 2000;

export async function registerHealthRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const journalProblem = deps.recorder.journalProblem?.();
    if (journalProblem) return reply.code(503).send({ status: 'unavailable', reason: journalProblem });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        sql`select 1`.execute(deps.db.kysely),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)),
            READY_TIMEOUT_MS,
          );
        }),
      ]);
      return { status: 'ready', database: deps.db.dialect };
    } catch (error) {
      return reply.code(503).send({ status: 'unavailable', reason: `database: ${(error as Error).message}` });
    } finally {
      clearTimeout(timer);
    }
  });
}
