import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.ts';
import { AppError } from '../errors.ts';
import { type AuthContext, LEGACY_USER_ID, LEGACY_USER_NAME } from './context.ts';
import { constantTimeEqual, hashSecret } from './hash.ts';
import { isApiPath, isExemptPath, pathOf } from './paths.ts';

/**
 * Foundation version of the auth hook: user API keys (Bearer, x-api-key) and legacy keys.
 * The Identity issue replaces the credential resolution with the full order of reference section 5.
 */
export async function registerAuthHook(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request) => {
    request.auth = await authenticate(request, deps);
    const path = pathOf(request.url);
    if (request.auth || isExemptPath(path) || !isApiPath(path)) return;
    throw new AppError(401, 'An authentication key is required', {
      headers: { 'www-authenticate': 'Bearer' },
      body: {
        error: { code: 401, message: 'An authentication key is required', type: 'invalid_request_error' },
      },
    });
  });
}

function extractKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization) return authorization.startsWith('Bearer ') ? authorization.slice(7) : authorization;
  const header = request.headers['x-api-key'] ?? request.headers['xi-api-key'];
  return typeof header === 'string' ? header : undefined;
}

async function authenticate(request: FastifyRequest, deps: AppDeps): Promise<AuthContext | null> {
  const key = extractKey(request);
  if (!key) return null;
  if (key.startsWith('kt-')) {
    const row = await deps.db.kysely
      .selectFrom('api_keys')
      .innerJoin('users', 'users.id', 'api_keys.user_id')
      .select([
        'api_keys.id as keyId',
        'api_keys.name as keyName',
        'api_keys.key_prefix as keyPrefix',
        'api_keys.expires_at as expiresAt',
        'api_keys.revoked_at as revokedAt',
        'users.id as userId',
        'users.email',
        'users.name',
        'users.avatar_url as avatarUrl',
        'users.provider',
        'users.role',
        'users.status',
      ])
      .where('api_keys.key_hash', '=', hashSecret(deps.hmacSecret, key))
      .executeTakeFirst();
    const now = Date.now();
    if (
      row &&
      row.revokedAt === null &&
      (row.expiresAt === null || row.expiresAt > now) &&
      row.status === 'active'
    ) {
      return {
        user: {
          id: row.userId,
          email: row.email,
          name: row.name,
          avatarUrl: row.avatarUrl,
          provider: row.provider,
          role: row.role,
          status: row.status,
        },
        role: row.role,
        source: 'apikey',
        apiKey: { id: row.keyId, name: row.keyName, prefix: row.keyPrefix },
      };
    }
  }
  if (deps.config.apiKeys.some((legacy) => constantTimeEqual(legacy, key))) {
    return {
      user: {
        id: LEGACY_USER_ID,
        email: '',
        name: LEGACY_USER_NAME,
        avatarUrl: '',
        provider: 'legacy',
        role: 'admin',
        status: 'active',
      },
      role: 'admin',
      source: 'legacy',
    };
  }
  return null;
}
