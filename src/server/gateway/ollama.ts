import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { NotFoundError, UpstreamError } from '../errors.ts';
import { allowsModel } from './access.ts';
import { admitModelRequest } from './admission.ts';
import { OLLAMA_EMBED_SHAPE, OLLAMA_INFERENCE_PATHS, OLLAMA_SHAPE } from './ollama-shapes.ts';
import { fetchUnrecorded, forwardBody, sendUpstreamAnswer, unwrapFailure } from './passthrough.ts';
import { type ProxyDeps, proxyInference } from './proxy.ts';
import { listsModel, ollamaAlias, type Upstream, type UpstreamTimeout } from './upstreams.ts';

/**
 * Ollama's native API (https://github.com/ollama/ollama/blob/main/docs/api.md) for the upstreams
 * that speak it (`api: ollama`, and the demo model): what Open WebUI's and Continue's Ollama modes
 * and the `ollama` npm client call. /api/chat, /api/generate, /api/embed and /api/embeddings are
 * recorded like /v1 inference (same admission, same forwarder, NDJSON streams tapped for the
 * final object's `prompt_eval_count` / `eval_count`); /api/tags, /api/show and /api/version are
 * not usage. Errors here are Ollama's `{"error": "..."}` (errors.ts).
 */

// /api/tags must answer even when an upstream hangs; its list is skipped after this long.
const TAGS_TIMEOUT: UpstreamTimeout = { ms: 5000, setting: null };

interface OllamaTag {
  name: string;
  model: string;
  [field: string]: unknown;
}

async function upstreamTags(upstream: Upstream): Promise<OllamaTag[]> {
  const response = await fetchUnrecorded(upstream, { path: '/api/tags', method: 'GET' }, TAGS_TIMEOUT);
  if (response.statusCode < 200 || response.statusCode >= 300)
    throw new Error(`status ${response.statusCode}`);
  const parsed = JSON.parse(response.body.toString('utf8')) as { models?: unknown };
  if (!Array.isArray(parsed.models)) throw new Error('no models array');
  return parsed.models.filter((tag): tag is OllamaTag => typeof (tag as OllamaTag)?.name === 'string');
}

function ollamaUpstreams(deps: ProxyDeps): Upstream[] {
  return deps.upstreams.upstreams.filter((upstream) => upstream.ollama);
}

export function registerOllamaRoutes(app: FastifyInstance, deps: ProxyDeps): void {
  for (const path of OLLAMA_INFERENCE_PATHS) {
    const shape = path === '/api/chat' || path === '/api/generate' ? OLLAMA_SHAPE : OLLAMA_EMBED_SHAPE;
    app.post(path, (request, reply) => proxyInference(deps, path, request, reply, shape));
  }

  // The union of the Ollama upstreams' lists (an upstream with `models` contributes only those,
  // plus the ones it names but does not list), by name, filtered to the models the caller may use
  // (owner's and key's allowlists) as on /v1/models.
  app.get('/api/tags', async (request, reply) => {
    const byName = new Map<string, OllamaTag>();
    const upstreams = ollamaUpstreams(deps);
    const asked = performance.now();
    const lists = await Promise.allSettled(upstreams.map((upstream) => upstreamTags(upstream)));
    const waited = performance.now() - asked;
    lists.forEach((result, index) => {
      const upstream = upstreams[index];
      if (!upstream) return;
      if (result.status === 'rejected') {
        request.log.warn(
          { upstream: upstream.name, error: String(result.reason) },
          'could not list Ollama tags',
        );
      } else {
        for (const tag of result.value) {
          if (upstream.models && !listsModel(upstream, tag.name)) continue;
          if (!byName.has(tag.name)) byName.set(tag.name, tag);
        }
      }
      for (const name of upstream.models ?? []) {
        if (byName.has(name) || byName.has(ollamaAlias(name))) continue;
        byName.set(name, { name, model: name, modified_at: new Date(0).toISOString(), size: 0, digest: '' });
      }
    });
    reply.header('x-keytally-overhead-ms', Math.max(0, reply.elapsedTime - waited).toFixed(2));
    const auth = request.auth;
    return { models: [...byName.values()].filter((tag) => allowsModel(auth, tag.name, true)) };
  });

  app.post('/api/show', async (request, reply) => {
    // Older clients name the model `name`.
    const body = request.body as Record<string, unknown> | undefined;
    if (body && typeof body === 'object' && body.model === undefined && typeof body.name === 'string') {
      body.model = body.name;
    }
    const { upstream, json } = unwrapFailure(() => admitModelRequest(deps, request, 'ollama'));
    return sendUpstreamAnswer(reply, await forwardBody(upstream, request, '/api/show', json));
  });

  // The first Ollama upstream's version: clients gate features on it.
  app.get('/api/version', async (_request, reply) => {
    const upstream = ollamaUpstreams(deps)[0];
    if (!upstream) {
      throw new NotFoundError(
        'no Ollama upstream is configured (set api: ollama on one in KEYTALLY_CONFIG); use the OpenAI API on /v1',
      );
    }
    const response = await fetchUnrecorded(upstream, { path: '/api/version', method: 'GET' });
    if (response.statusCode >= 500) {
      throw new UpstreamError(502, `the Ollama upstream "${upstream.name}" answered ${response.statusCode}`);
    }
    return sendUpstreamAnswer(reply, response);
  });
}
