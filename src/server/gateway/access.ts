import type { FastifyInstance } from 'fastify';
import type { FeaturesResponse } from '../../shared/access.ts';
import type { AuthContext } from '../auth/context.ts';
import { requireAdmin } from '../auth/guards.ts';
import { featureCatalogue } from '../auth/permissions.ts';
import { ForbiddenError } from '../errors.ts';
import { listModels } from './models.ts';
import type { UpstreamSet } from './proxy.ts';

/**
 * Model allowlists on the gateway (issue 14): the owner's LocalAI allowlist and the key's own,
 * both from the credential cache. Checked on the model the request is routed with.
 */
export function allowsModel(auth: AuthContext | null, model: string): boolean {
  if (!auth) return true;
  const owner = auth.access.models;
  if (owner && !owner.allows(model)) return false;
  const own = auth.keyRights?.models;
  return !own || own.allows(model);
}

/** 403 in the OpenAI shape naming the model (reference 2.5's message). */
export function assertModelAllowed(auth: AuthContext | null, model: string): void {
  if (allowsModel(auth, model)) return;
  throw new ForbiddenError(`access denied to model: ${model}`, { code: 'model_not_allowed' });
}

/** GET /api/auth/admin/features (reference 2.6): the catalogue plus every served model, unfiltered. */
export function registerFeatureRoute(app: FastifyInstance, upstreams: UpstreamSet): void {
  app.get('/api/auth/admin/features', async (request): Promise<FeaturesResponse> => {
    requireAdmin(request);
    let models: string[] = [];
    try {
      models = (await listModels(upstreams)).data.map((entry) => entry.id);
    } catch (error) {
      request.log.warn({ err: error }, 'could not list models for the features catalogue');
    }
    return { ...featureCatalogue(), models };
  });
}
