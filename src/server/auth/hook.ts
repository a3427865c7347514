import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { type AuthContext, type AuthUser, LEGACY_USER_ID, LEGACY_USER_NAME } from './context.ts';
import type { CachedApiKey, CachedSession } from './credential-cache.ts';
import { cachedApiKey, KEY_INVALID, validateApiKey, validateSession } from './credentials.service.ts';
import { enforceAccess } from './enforce.ts';
import { constantTimeEqual } from './hash.ts';
import { checkRequestOrigin } from './origin.ts';
import { isApiPath, isExemptPath, pathOf } from './paths.ts';
import { FULL_ACCESS } from './permissions.ts';
import {
  needsRotation,
  rotateSession,
  SESSION_COOKIE,
  setCredentialCookie,
  TOKEN_COOKIE,
} from './sessions.service.ts';

export const AUTH_REQUIRED_MESSAGE = 'An authentication key is required';

const LEGACY_USER: AuthUser = {
  id: LEGACY_USER_ID,
  email: '',
  name: LEGACY_USER_NAME,
  avatarUrl: '',
  provider: 'legacy',
  role: 'admin',
  status: 'active',
};

/**
 * The auth hook (reference section 5). Resolves the caller in the exact credential order
 * (session cookie, Bearer as session, Bearer as key, x-api-key / xi-api-key, token cookie, legacy
 * key), attaches `request.auth`, rotates hour-old cookie sessions, refuses cross-site
 * cookie-authenticated writes, and answers 401 on API paths without a valid credential.
 */
export async function registerAuthHook(app: FastifyInstance, rt: AuthRuntime): Promise<void> {
  app.decorateRequest('auth', null);
  // Callback-style: a cached API key (every proxied request of a client) is resolved synchronously,
  // without the promise and microtask turns of the full path.
  app.addHook('onRequest', (request, reply, done) => {
    const cached = cachedBearerKey(request, rt);
    if (cached) {
      const auth = fromApiKey(cached);
      request.auth = auth;
      if (rt.logger.isLevelEnabled('debug')) logResolution(request, auth, undefined);
      try {
        enforceAccess(request, auth, pathOf(request.url));
      } catch (error) {
        done(error as Error);
        return;
      }
      done();
      return;
    }
    resolveRequest(request, reply, rt).then(() => done(), done);
  });
}

/**
 * The fast path of `authenticate`: `Authorization: Bearer kt-…` of a cached, valid key and no session
 * cookie, the one case where the credential order cannot end anywhere else (a kt- key is never a
 * session token). Anything else (a miss, a refusal and its reason) takes the full path.
 */
function cachedBearerKey(request: FastifyRequest, rt: AuthRuntime): CachedApiKey | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization !== 'string' || !authorization.startsWith('Bearer kt-')) return undefined;
  if (request.cookies?.[SESSION_COOKIE]) return undefined;
  return cachedApiKey(rt, authorization.slice(7).trim());
}

// Identifiers only (user id, key prefix): never a key, token or cookie.
function logResolution(request: FastifyRequest, auth: AuthContext | null, failure: string | undefined): void {
  if (auth) {
    request.log.debug(
      { source: auth.source, userId: auth.user.id, apiKeyPrefix: auth.apiKey?.prefix },
      'authenticated',
    );
  } else if (failure) {
    request.log.debug({ reason: failure }, 'credential refused');
  }
}

async function resolveRequest(request: FastifyRequest, reply: FastifyReply, rt: AuthRuntime): Promise<void> {
  const { auth, failure } = await authenticate(request, rt);
  request.auth = auth;
  if (rt.logger.isLevelEnabled('debug')) logResolution(request, auth, failure);
  checkRequestOrigin(request, rt.config.publicUrl);
  if (auth?.viaCookie && auth.sessionId) await maybeRotate(request, reply, rt, auth);
  const path = pathOf(request.url);
  if (auth) {
    enforceAccess(request, auth, path);
    return;
  }
  if (isExemptPath(path) || !isApiPath(path)) return;
  // Each route family's envelope (errors.ts). A credential that was presented and refused
  // (unknown, revoked, expired, owner disabled) is OpenAI's `invalid_api_key`; none at all: null.
  const presented = presentedCredential(request);
  const message = failure ?? (presented ? KEY_INVALID : AUTH_REQUIRED_MESSAGE);
  throw new AppError(401, message, {
    type: 'invalid_request_error',
    code: presented ? 'invalid_api_key' : null,
    headers: { 'www-authenticate': 'Bearer' },
  });
}

function presentedCredential(request: FastifyRequest): boolean {
  return (
    header(request, 'authorization') !== undefined ||
    header(request, 'x-api-key') !== undefined ||
    header(request, 'xi-api-key') !== undefined ||
    Boolean(request.cookies?.[TOKEN_COOKIE])
  );
}

interface Resolution {
  auth: AuthContext | null;
  /** Why the first presented credential was refused (expired, revoked, inactive owner). */
  failure?: string;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

function fromSession(entry: CachedSession, viaCookie: boolean): AuthContext {
  return {
    user: entry.user,
    role: entry.user.role,
    source: 'web',
    sessionId: entry.sessionId,
    viaCookie,
    access: entry.access,
  };
}

function fromApiKey(entry: CachedApiKey): AuthContext {
  return {
    user: entry.user,
    role: entry.user.role,
    source: 'apikey',
    apiKey: { id: entry.keyId, name: entry.name, prefix: entry.prefix },
    keyRights: entry.rights,
    access: entry.access,
  };
}

export async function authenticate(request: FastifyRequest, rt: AuthRuntime): Promise<Resolution> {
  let failure: string | undefined;
  const note = (reason: string) => {
    failure ??= reason;
  };
  const cookies = request.cookies ?? {};

  // a. the `session` cookie
  const sessionCookie = cookies[SESSION_COOKIE];
  if (sessionCookie) {
    const result = await validateSession(rt, sessionCookie);
    if (result.ok) return { auth: fromSession(result.value, true) };
  }

  // b. Authorization: Bearer <t>, first as a session (b1), then as a user API key (b2)
  const authorization = header(request, 'authorization');
  if (authorization?.startsWith('Bearer ')) {
    const token = authorization.slice(7).trim();
    if (token) {
      const session = await validateSession(rt, token);
      if (session.ok) return { auth: fromSession(session.value, false) };
      const key = await validateApiKey(rt, token);
      if (key.ok) return { auth: fromApiKey(key.value) };
      if (token.startsWith('kt-')) note(key.reason);
    }
  }

  // c. x-api-key, then xi-api-key: API keys only, never sessions
  const headerKey = header(request, 'x-api-key') ?? header(request, 'xi-api-key');
  if (headerKey) {
    const key = await validateApiKey(rt, headerKey);
    if (key.ok) return { auth: fromApiKey(key.value) };
    if (headerKey.startsWith('kt-')) note(key.reason);
  }

  // d. the `token` cookie as a user API key
  const tokenCookie = cookies[TOKEN_COOKIE];
  if (tokenCookie) {
    const key = await validateApiKey(rt, tokenCookie);
    if (key.ok) return { auth: fromApiKey(key.value) };
    if (tokenCookie.startsWith('kt-')) note(key.reason);
  }

  // legacy: only the first credential found, compared in constant time with every configured key
  if (rt.config.apiKeys.length > 0) {
    const candidate =
      (authorization?.startsWith('Bearer ') ? authorization.slice(7) : authorization) ??
      headerKey ??
      tokenCookie;
    if (candidate && matchesLegacyKey(rt, candidate)) {
      return { auth: { user: LEGACY_USER, role: 'admin', source: 'legacy', access: FULL_ACCESS } };
    }
  }
  return { auth: null, failure };
}

/** Every configured key is compared (no early exit), so timing does not reveal which matched. */
export function matchesLegacyKey(rt: AuthRuntime, candidate: string): boolean {
  let matched = false;
  for (const legacy of rt.config.apiKeys) {
    if (constantTimeEqual(legacy, candidate)) matched = true;
  }
  return matched;
}

/** Hourly rotation of cookie sessions; a failed rotation is not fatal (reference section 3.3). */
async function maybeRotate(
  request: FastifyRequest,
  reply: FastifyReply,
  rt: AuthRuntime,
  auth: AuthContext,
): Promise<void> {
  const sessionId = auth.sessionId;
  if (!sessionId) return;
  const entry = rt.cache.get(sessionId);
  if (entry?.kind !== 'session' || !needsRotation(entry.rotatedAt, rt.now())) return;
  try {
    const token = await rotateSession(rt, sessionId, auth.user.id, entry.expiresAt);
    if (!token) return;
    setCredentialCookie(request, reply, SESSION_COOKIE, token);
  } catch (error) {
    request.log.warn({ err: error }, 'session rotation failed');
  }
}
