import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { AuthContext } from './context.ts';

/**
 * Route guards. `/api/auth/*` handlers answer 401 `{"error":"not authenticated"}` themselves
 * (reference section 9); admin routes use RequireAdmin's shapes (reference section 5).
 */
export function requireUser(request: FastifyRequest): AuthContext {
  if (!request.auth) throw new AppError(401, 'not authenticated');
  return request.auth;
}

export function requireAdmin(request: FastifyRequest): AuthContext {
  if (!request.auth) {
    throw new AppError(401, 'Authentication required', {
      body: { error: { message: 'Authentication required', code: 401, type: 'authentication_error' } },
    });
  }
  if (request.auth.role !== 'admin') {
    throw new AppError(403, 'Admin access required', {
      body: { error: { message: 'Admin access required', code: 403, type: 'authorization_error' } },
    });
  }
  return request.auth;
}
