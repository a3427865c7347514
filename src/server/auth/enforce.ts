import type { FastifyRequest } from 'fastify';
import type { KeyScope } from '../../shared/access.ts';
import { ForbiddenError } from '../errors.ts';
import { missingForFullRights, requirementOf } from './access.ts';
import type { AuthContext } from './context.ts';
import { isApiPath } from './paths.ts';
import { featureOfPath } from './permissions.ts';

/**
 * The request-level access checks (issue 14), run by the auth hook right after the caller is known,
 * from what the credential cache holds: the key's IP allowlist and scopes, then the owner's feature
 * map. Model allowlists need the routed model and are checked by the gateway (gateway/access.ts).
 */
export function enforceAccess(request: FastifyRequest, auth: AuthContext, path: string): void {
  const rights = auth.keyRights;
  if (rights) {
    if (rights.ips && !rights.ips.allows(request.ip)) {
      throw new ForbiddenError(
        `this API key may not be used from ${request.ip} (its IP allowlist does not include it)`,
        {
          code: 'ip_not_allowed',
        },
      );
    }
    if (rights.scopes !== 'all') {
      const need = requirementOf(path, isApiPath(path));
      if (need === 'full') {
        const missing = missingForFullRights(rights.scopes, auth.role);
        if (missing.length > 0) throw missingScope(missing, 'this route needs every scope of the key owner');
      } else if (need !== null && !rights.scopes.has(need)) {
        throw missingScope([need]);
      }
    }
  }
  const features = auth.access.features;
  if (features !== null) {
    const feature = featureOfPath(path);
    if (feature !== undefined && features[feature] !== true) {
      // LocalAI's message; its numeric `code: 403` is not kept (OpenAI clients read a string code)
      throw new ForbiddenError(`feature not enabled for your account: ${feature}`, {
        code: 'feature_not_enabled',
      });
    }
  }
}

export function missingScope(missing: readonly KeyScope[], why?: string): ForbiddenError {
  const names = missing.map((scope) => `'${scope}'`).join(', ');
  return new ForbiddenError(
    `this API key lacks the scope${missing.length === 1 ? '' : 's'} ${names}${why ? ` (${why})` : ''}`,
    { code: 'missing_scope', extra: { missing_scopes: missing } },
  );
}
