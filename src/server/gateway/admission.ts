import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/context.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import type { Ticket } from '../limits/limiter.ts';
import { assertModelAllowed } from './access.ts';
import { RequestFailure } from './failures.ts';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json-depth.ts';
import type { ProxyDeps, UpstreamSet } from './proxy.ts';
import type { Upstream } from './upstreams.ts';
import { MODEL_MAX_CHARS } from './usage-row.ts';
import type { WireShape } from './usage-shapes.ts';

type Json = Record<string, unknown>;

export function modelNotFound(model: string, upstreams: UpstreamSet): NotFoundError {
  const known = upstreams.knownModels();
  const hint = upstreams.demo
    ? `no upstream is configured, so only the built-in demo model "demo" is served; set KEYTALLY_UPSTREAM_URL or KEYTALLY_CONFIG to reach other models`
    : `the configured upstreams serve ${known.map((m) => `"${m}"`).join(', ') || 'no listed models'}; add it to an upstream's models in KEYTALLY_CONFIG`;
  return new NotFoundError(`The model "${model}" does not exist here: ${hint}. GET /v1/models lists them.`, {
    code: 'model_not_found',
  });
}

/**
 * Checks and reserves every limit that applies; throws the 429 when one does not fit. Synchronous
 * unless a limit close to full needs the tokenizer loaded or a shared budget a lease: a key without
 * limits costs two map look-ups and no promise. Whoever ends the request frees the ticket: its
 * settlement (the usage row), sendWhole once a non-2xx answer is out, a relay's close, or forward's
 * catch (nothing listens on the socket per request for it).
 */
export function admit(
  deps: ProxyDeps,
  auth: AuthContext,
  model: string,
  json: Json,
  reply: FastifyReply,
  provider: Upstream['provider'],
): Ticket | null | Promise<Ticket | null> {
  if (!deps.limits) return null;
  let admitted: Ticket | null | Promise<Ticket>;
  try {
    admitted = deps.limits.admit(auth, model, json, reply, provider);
  } catch (error) {
    throw new RequestFailure('limited', error);
  }
  if (admitted instanceof Promise) {
    return admitted.catch((error: unknown) => {
      throw new RequestFailure('limited', error);
    });
  }
  return admitted;
}

/** A request that passed admission: its body, caller, model and the upstream serving it. */
export interface Admission {
  json: Json;
  auth: AuthContext;
  requestedModel: string;
  upstream: Upstream;
}

/**
 * The checks every model request passes before anything is forwarded: the /v1 inference routes,
 * Ollama's native ones (`api: 'ollama'`: the upstream must speak it), count_tokens and /api/show.
 * A check added here (scopes, model allowlists) applies to all of them. Checks only: whatever
 * reserves capacity belongs in `forward`, after this, which every recorded route (OpenAI's and
 * Ollama's) passes and the unrecorded ones do not, so nothing is reserved that no row settles.
 * Throws RequestFailure.
 */
export function admitModelRequest(
  deps: ProxyDeps,
  request: FastifyRequest,
  api: WireShape['api'] = 'openai',
): Admission {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestFailure('invalid_request', new BadRequestError('body: must be a JSON object'));
  }
  const json = body as Json;
  if (exceedsJsonDepth(json)) {
    throw new RequestFailure(
      'invalid_request',
      new BadRequestError(`body: nested deeper than ${MAX_JSON_DEPTH} levels`),
    );
  }
  if (typeof json.model !== 'string' || json.model.trim() === '') {
    throw new RequestFailure(
      'invalid_request',
      new BadRequestError('model: is required (a model id string)'),
    );
  }
  if (json.model.includes('\u0000')) {
    // Stored in the usage row: PostgreSQL cannot hold a NUL in text.
    throw new RequestFailure(
      'invalid_request',
      new BadRequestError('model: must not contain NUL characters'),
    );
  }
  if (json.model.length > MODEL_MAX_CHARS && Array.from(json.model).length > MODEL_MAX_CHARS) {
    // The usage row's model column holds 255 characters.
    throw new RequestFailure(
      'invalid_request',
      new BadRequestError(`model: must be at most ${MODEL_MAX_CHARS} characters`),
    );
  }
  const auth = request.auth;
  if (!auth) throw new RequestFailure('no_user', new BadRequestError('a credential is required'));
  const requestedModel = json.model;
  // The model the request is routed with (one without a model is refused above, so no default can
  // bypass the allowlist); checked before routing, so a restricted caller cannot probe which exist.
  try {
    assertModelAllowed(auth, requestedModel, api === 'ollama');
  } catch (error) {
    throw new RequestFailure('model_not_allowed', error);
  }
  const upstream = deps.upstreams.route(requestedModel);
  if (!upstream) throw new RequestFailure('unknown_model', modelNotFound(requestedModel, deps.upstreams));
  if (api === 'ollama' && !upstream.ollama) {
    throw new RequestFailure(
      'unknown_model',
      new NotFoundError(
        `The model "${requestedModel}" is served by the upstream "${upstream.name}", which speaks OpenAI's API, not Ollama's: call /v1/chat/completions, or set api: ollama on an Ollama upstream in KEYTALLY_CONFIG.`,
        { code: 'model_not_found' },
      ),
    );
  }
  return { json, auth, requestedModel, upstream };
}
