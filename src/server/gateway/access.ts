import type { FastifyInstance } from 'fastify';
import type { FeaturesResponse } from '../../shared/access.ts';
import type { AuthContext } from '../auth/context.ts';
import { requireAdmin } from '../auth/guards.ts';
import { featureCatalogue } from '../auth/permissions.ts';
import { ForbiddenError } from '../errors.ts';
import { listModels } from './models.ts';
import type { UpstreamSet } from './proxy.ts';
import { ollamaAlias } from './upstreams.ts';

/**
 * Model allowlists on the gateway (issue 14): the owner's LocalAI allowlist and the key's own,
 * both from the credential cache. Checked on the model the request is routed with.
 */
export function allowsModel(auth: AuthContext | null, model: string, ollama = false): boolean {
  if (!auth) return true;
  if (allowsExactly(auth, model)) return true;
  // Ollama treats `llama3` and `llama3:latest` as one model: on its API either spelling counts.
  return ollama && allowsExactly(auth, ollamaAlias(model));
}

function allowsExactly(auth: AuthContext, model: string): boolean {
  const owner = auth.access.models;
  if (owner && !owner.allows(model)) return false;
  const own = auth.keyRights?.models;
  return !own || own.allows(model);
}

/** 403 naming the model (reference 2.5's message), in the route family's envelope. */
export function assertModelAllowed(auth: AuthContext | null, model: string, ollama = false): void {
  if (allowsModel(auth, model, ollama)) return;
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
