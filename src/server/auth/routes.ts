import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { RotateApiKeyRequest, UpdateApiKeyRequest } from '../../shared/access.ts';
import {
  CreateApiKeyRequest,
  LoginRequest,
  PasswordChangeRequest,
  ProfileRequest,
  RegisterRequest,
  type StatusResponse,
  TokenLoginRequest,
} from '../../shared/auth.ts';
import type { AppDeps } from '../deps.ts';
import { BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError } from '../errors.ts';
import { limitsOf, resolveNewKeyLimits, saveNewKeyLimits } from '../limits/register.ts';
import { metricsFor } from '../metrics/registry.ts';
import { missingForFullRights } from './access.ts';
import {
  changePassword,
  loginUser,
  REGISTRATION_PROCESSED,
  registerUser,
  updateProfile,
} from './accounts.service.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import {
  createApiKeyFor,
  type KeyActor,
  listOwnApiKeys,
  revokeApiKeyById,
  rotateApiKeyById,
  updateApiKeyById,
} from './api-keys.service.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { type AuthContext, LEGACY_USER_ID } from './context.ts';
import { CredentialCache } from './credential-cache.ts';
import { validateApiKey } from './credentials.service.ts';
import { toMe, toUserSummary } from './dto.ts';
import { missingScope } from './enforce.ts';
import { requireUser } from './guards.ts';
import { matchesLegacyKey, registerAuthHook } from './hook.ts';
import { createAuthEvents } from './invalidation.ts';
import { AUTH_BODY_LIMIT_BYTES, RateLimiter } from './protection.ts';
import {
  cleanExpiredSessions,
  clearCredentialCookie,
  createSession,
  endAllSessions,
  endSession,
  SESSION_COOKIE,
  setCredentialCookie,
  TOKEN_COOKIE,
} from './sessions.service.ts';
import { registerSsoRoutes, type SsoRuntime } from './sso/routes.ts';
import { countUsers } from './users.repository.ts';
import { parseInput } from './validation.ts';

// Expired sessions are deleted hourly (reference section 3.3); expired keys stay as rows.
const CLEANUP_INTERVAL_MS = 3_600_000;

/** The auth hook and the /api/auth/* routes (Identity issue). */
export async function registerAuth(app: FastifyInstance, deps: AppDeps): Promise<AuthRuntime> {
  if (!app.hasDecorator('parseCookie')) await app.register(cookie);
  const now = deps.now ?? Date.now;
  const cache = new CredentialCache(now);
  new Counter({
    name: 'keytally_stale_credentials_served_total',
    help: 'Credentials accepted from the stale cache because the database could not be read',
    registers: [metricsFor(deps, deps.recorder).registry],
    collect() {
      this.reset();
      this.inc(cache.staleServed);
    },
  });
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
  const sso = registerSsoRoutes(app, rt);
  registerAccountRoutes(app, rt, sso);
  registerApiKeyRoutes(app, rt);
  registerAdminRoutes(app, rt);
  return rt;
}

const opts = { bodyLimit: AUTH_BODY_LIMIT_BYTES };

/** A real (stored) account; the legacy key's synthetic user has no row to change. */
function requireAccount(request: FastifyRequest): AuthContext {
  const auth = requireUser(request);
  if (auth.user.id === LEGACY_USER_ID) {
    throw new BadRequestError('the legacy API key user has no account; sign in as a user');
  }
  return auth;
}

async function startSession(
  rt: AuthRuntime,
  request: FastifyRequest,
  reply: FastifyReply,
  userId: string,
): Promise<void> {
  const { token } = await createSession(rt, userId);
  setCredentialCookie(request, reply, SESSION_COOKIE, token);
}

/** KEYTALLY_DISABLE_LOCAL_AUTH: password login and registration are refused (single sign-on only). */
function refuseWhenLocalAuthDisabled(rt: AuthRuntime): void {
  if (rt.config.disableLocalAuth) {
    throw new ForbiddenError('local sign-in is disabled on this server; use single sign-on');
  }
}

function registerAccountRoutes(app: FastifyInstance, rt: AuthRuntime, sso: SsoRuntime): void {
  const limiter = new RateLimiter(rt.now);

  app.get('/api/auth/status', async (request): Promise<StatusResponse> => {
    const mode = rt.config.registrationMode;
    const ready = sso.readyProviders();
    return {
      authEnabled: true,
      staticApiKeyRequired: false,
      // Built from the providers that actually initialised (reference-control section 6 item 3).
      providers: [...(rt.config.disableLocalAuth ? [] : ['local']), ...ready.map((provider) => provider.id)],
      sso: ready,
      hasUsers: (await countUsers(rt.db)) > 0,
      registrationMode: mode,
      user: request.auth ? toMe(request.auth) : null,
    };
  });

  app.post('/api/auth/register', opts, async (request, reply) => {
    refuseWhenLocalAuthDisabled(rt);
    limiter.hit('register', request);
    const input = parseInput(RegisterRequest, request.body);
    const outcome = await registerUser(rt, input);
    if (outcome.kind === 'processed') return reply.code(201).send({ message: REGISTRATION_PROCESSED });
    if (outcome.kind === 'pending') {
      return reply
        .code(200)
        .send({ message: 'registration successful, awaiting admin approval', pending: true });
    }
    await startSession(rt, request, reply, outcome.user.id);
    return reply.code(201).send({ user: toUserSummary(outcome.user) });
  });

  app.post('/api/auth/login', opts, async (request, reply) => {
    refuseWhenLocalAuthDisabled(rt);
    limiter.hit('login', request);
    const input = parseInput(LoginRequest, request.body);
    if (input.email.trim() === '') throw new BadRequestError('email is required');
    if (input.password === '') throw new BadRequestError('password is required');
    const user = await loginUser(rt, input.email, input.password);
    await startSession(rt, request, reply, user.id);
    return { user: toUserSummary(user) };
  });

  app.post('/api/auth/token-login', opts, async (request, reply) => {
    limiter.hit('token-login', request);
    const { token } = parseInput(TokenLoginRequest, request.body);
    const trimmed = token.trim();
    if (trimmed === '') throw new BadRequestError('token is required');
    const key = await validateApiKey(rt, trimmed);
    if (key.ok) {
      // A session has every right of its owner: only a key that has them all may start one.
      const missing = missingForFullRights(key.value.rights.scopes, key.value.user.role);
      if (missing.length > 0) throw missingScope(missing, 'a session has every right of its owner');
      // A user key becomes a normal session: later dashboard traffic counts as `web`.
      await startSession(rt, request, reply, key.value.user.id);
      return { user: toUserSummary(key.value.user) };
    }
    if (rt.config.apiKeys.length > 0 && matchesLegacyKey(rt, trimmed)) {
      setCredentialCookie(request, reply, TOKEN_COOKIE, trimmed);
      return {
        user: {
          id: LEGACY_USER_ID,
          email: '',
          name: 'API Key User',
          avatarUrl: '',
          role: 'admin',
          provider: 'legacy',
          status: 'active',
        },
      };
    }
    throw new UnauthorizedError('invalid token');
  });

  app.post('/api/auth/logout', opts, async (request, reply) => {
    const auth = request.auth;
    if (auth?.viaCookie && auth.sessionId) await endSession(rt, auth.sessionId);
    clearCredentialCookie(request, reply, SESSION_COOKIE);
    if (request.cookies?.[TOKEN_COOKIE]) clearCredentialCookie(request, reply, TOKEN_COOKIE);
    return { message: 'logged out' };
  });

  app.get('/api/auth/me', async (request) => {
    const auth = requireUser(request);
    return { ...toMe(auth), quotas: limitsOf(rt.config)?.quotaStatuses(auth.user.id) ?? [] };
  });

  app.put('/api/auth/profile', opts, async (request) => {
    const auth = requireAccount(request);
    const input = parseInput(ProfileRequest, request.body);
    const user = await updateProfile(rt, auth.user.id, { name: input.name, avatarUrl: input.avatar_url });
    return { message: 'profile updated', user: toUserSummary(user) };
  });

  app.put('/api/auth/password', opts, async (request, reply) => {
    const auth = requireAccount(request);
    const input = parseInput(PasswordChangeRequest, request.body);
    await changePassword(rt, auth.user.id, {
      current: input.current_password,
      next: input.new_password,
      acknowledgeWeak: input.acknowledge_weak_password === true,
    });
    await startSession(rt, request, reply, auth.user.id);
    return { message: 'password updated' };
  });

  app.delete('/api/auth/sessions', opts, async (request, reply) => {
    const auth = requireAccount(request);
    await endAllSessions(rt, auth.user.id);
    await startSession(rt, request, reply, auth.user.id);
    return { message: 'all sessions revoked' };
  });
}

function registerApiKeyRoutes(app: FastifyInstance, rt: AuthRuntime): void {
  app.post('/api/auth/api-keys', opts, async (request, reply) => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) {
      throw new ForbiddenError('the legacy API key user cannot own API keys; sign in as a user');
    }
    const input = parseInput(CreateApiKeyRequest, request.body);
    // Checked before the key exists: limits above the admin's maximums refuse the whole request.
    const limits = await resolveNewKeyLimits(rt.config, auth, input.limits);
    const created = await createApiKeyFor(rt, actorOf(auth), input);
    if (limits) await saveNewKeyLimits(rt.config, rt.db, created.id, limits);
    return reply.code(201).send(created);
  });

  app.get('/api/auth/api-keys', async (request) => {
    const auth = requireUser(request);
    return { keys: auth.user.id === LEGACY_USER_ID ? [] : await listOwnApiKeys(rt, auth.user.id) };
  });

  app.delete<{ Params: { id: string } }>('/api/auth/api-keys/:id', opts, async (request) => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) throw new NotFoundError('API key not found');
    await revokeApiKeyById(rt, request.params.id, auth.user.id);
    return { message: 'API key revoked' };
  });

  app.patch<{ Params: { id: string } }>('/api/auth/api-keys/:id', opts, async (request) => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) throw new NotFoundError('API key not found');
    const input = parseInput(UpdateApiKeyRequest, request.body);
    return { key: await updateApiKeyById(rt, request.params.id, actorOf(auth), input, auth.user.id) };
  });

  app.post<{ Params: { id: string } }>('/api/auth/api-keys/:id/rotate', opts, async (request) => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) throw new NotFoundError('API key not found');
    const input = parseInput(RotateApiKeyRequest, request.body ?? {});
    return rotateApiKeyById(rt, request.params.id, input, auth.user.id);
  });
}

function actorOf(auth: AuthContext): KeyActor {
  return { id: auth.user.id, role: auth.role, via: auth.keyRights };
}
