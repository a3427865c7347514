import cookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { CredentialCache } from './credential-cache.ts';
import { registerAuthHook } from './hook.ts';
import { createAuthEvents } from './invalidation.ts';
import { cleanExpiredSessions } from './sessions.service.ts';

// Expired sessions are deleted hourly (reference section 3.3); expired keys stay as rows.
const CLEANUP_INTERVAL_MS = 3_600_000;

/** The auth hook and the /api/auth/* routes (Identity issue). */
export async function registerAuth(app: FastifyInstance, deps: AppDeps): Promise<AuthRuntime> {
  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  const now = deps.now ?? Date.now;
  const cache = new CredentialCache(now);
  const events = await createAuthEvents({
    db: deps.db,
    databaseUrl: deps.config.databaseUrl,
    cache,
    logger: deps.logger,
  });
  const rt: AuthRuntime = {
    db: deps.db,
    config: deps.config,
    hmacSecret: deps.hmacSecret,
    logger: deps.logger,
    now,
    cache,
    events,
    noteKeyUsed: (keyId, at) => deps.recorder.noteKeyUsed(keyId, at),
  };
  const cleanup = setInterval(() => {
    cleanExpiredSessions(rt).catch((error: unknown) => {
      deps.logger.warn({ err: error }, 'expired-session cleanup failed');
    });
  }, CLEANUP_INTERVAL_MS);
  cleanup.unref();
  app.addHook('onClose', async () => {
    clearInterval(cleanup);
    await events.close();
  });
  await registerAuthHook(app, rt);
  return rt;
}
