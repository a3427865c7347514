import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors as undiciErrors } from 'undici';
import type { AuthContext } from '../auth/context.ts';
import { pathOf } from '../auth/paths.ts';
import type { PriceBook } from '../cost/price-book.ts';
import { priceUsageRow } from '../cost/pricing.ts';
import { BadRequestError, NotFoundError, ServiceUnavailableError, UpstreamError } from '../errors.ts';
import type { Ticket } from '../limits/limiter.ts';
import type { Limits } from '../limits/limits.service.ts';
import type { GatewayMetrics } from '../metrics/registry.ts';
import type { UsageEvent, UsageRecorder } from '../usage/recorder.ts';
import { usageRowId } from '../usage/row-id.ts';
import { assertModelAllowed } from './access.ts';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './json-depth.ts';
import type { OllamaInferencePath } from './ollama-shapes.ts';
import { SseRelay } from './sse-relay.ts';
import { countTextTokens, estimatePromptTokens } from './tokens.ts';
import {
  type BufferedResponse,
  listsModel,
  type OpenExchange,
  openViaSend,
  type ResponseSink,
  type Upstream,
  type UpstreamRequest,
  type UpstreamResponse,
} from './upstreams.ts';
import { OPENAI_SHAPE, type TokenCounts, type WireShape } from './usage-shapes.ts';

export const INFERENCE_ENDPOINTS = [
  '/chat/completions',
  '/completions',
  '/embeddings',
  '/responses',
  '/messages',
] as const;
export type InferenceEndpoint = (typeof INFERENCE_ENDPOINTS)[number];
/** What the proxy forwards: an OpenAI inference route, or an Ollama native one (ollama.ts). */
export type ProxiedPath = InferenceEndpoint | OllamaInferencePath;

/** Why an inference request produced no usage row (label of keytally_usage_unrecorded_total). */
export type UnrecordedReason =
  | 'invalid_request'
  | 'unknown_model'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_status'
  | 'client_closed'
  | 'no_user'
  | 'limited'
  | 'model_not_allowed'
  | 'recorder_error'
  | 'journal_unavailable';

// RFC 9110 section 7.6.1 hop-by-hop headers, plus what keytally recomputes itself.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);
// The client's credentials for keytally; never sent upstream.
const CLIENT_CREDENTIALS = new Set(['authorization', 'x-api-key', 'xi-api-key', 'cookie']);
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'set-cookie', 'x-request-id', 'content-encoding']);

export class UpstreamSet {
  constructor(
    readonly upstreams: readonly Upstream[],
    readonly demo: boolean,
  ) {}

  /** The upstream for `model`: the one listing it, else the first one listing no models. */
  route(model: string): Upstream | undefined {
    return (
      this.upstreams.find((upstream) => upstream.models?.includes(model)) ??
      this.upstreams.find((upstream) => upstream.ollama && listsModel(upstream, model)) ??
      this.upstreams.find((upstream) => upstream.models === undefined)
    );
  }

  knownModels(): string[] {
    return this.upstreams.flatMap((upstream) => upstream.models ?? []);
  }
}

export interface ProxyDeps {
  upstreams: UpstreamSet;
  recorder: UsageRecorder;
  metrics: GatewayMetrics;
  now: () => number;
  /** Prices each row at record time (decisions.md section 8). */
  prices: PriceBook;
  /** Per-key limits and quota rules (admission before forwarding, settlement on the usage row). */
  limits?: Limits;
}

type Json = Record<string, unknown>;

/**
 * Header names a `Connection` header lists (hop-by-hop for this connection only); null when it
 * names none beyond the usual `keep-alive` / `close`, the common case, which allocates nothing.
 */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (typeof value !== 'string') return null;
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return null;
  const tokens = new Set<string>();
  for (const token of lower.split(',')) tokens.add(token.trim());
  return tokens;
}

/** The client's headers minus hop-by-hop headers and credentials; the body is re-encoded as JSON. */
export function upstreamRequestHeaders(request: FastifyRequest): Record<string, string> {
  const given = request.headers;
  const named = connectionTokens(given.connection);
  const headers: Record<string, string> = {};
  for (const name in given) {
    const value = given[name];
    if (value === undefined || HOP_BY_HOP.has(name) || CLIENT_CREDENTIALS.has(name) || named?.has(name))
      continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  headers['content-type'] = 'application/json';
  // Usage is read from the body, so it must arrive uncompressed.
  headers['accept-encoding'] = 'identity';
  headers['x-request-id'] = request.id;
  return headers;
}

/** The upstream's response headers minus hop-by-hop ones and what keytally sets itself. */
export function responseHeaders(upstream: UpstreamResponse['headers']): Record<string, string | string[]> {
  const named = connectionTokens(upstream.connection);
  const headers: Record<string, string | string[]> = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || RESPONSE_DROP.has(name) || named?.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}

function errorCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeout(error: unknown): boolean {
  return (
    (error instanceof Error && error.name === 'TimeoutError') ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  );
}

/** A request that ends without a usage row, and why (the error handler answers `error`). */
export class RequestFailure extends Error {
  constructor(
    readonly reason: UnrecordedReason,
    readonly error: unknown,
    /** Time spent waiting on the upstream, excluded from x-keytally-overhead-ms. */
    readonly upstreamMs?: number,
  ) {
    super(reason);
  }
}

export function modelNotFound(model: string, upstreams: UpstreamSet): NotFoundError {
  const known = upstreams.knownModels();
  const hint = upstreams.demo
    ? `no upstream is configured, so only the built-in demo model "demo" is served; set KEYTALLY_UPSTREAM_URL or KEYTALLY_CONFIG to reach other models`
    : `the configured upstreams serve ${known.map((m) => `"${m}"`).join(', ') || 'no listed models'}; add it to an upstream's models in KEYTALLY_CONFIG`;
  return new NotFoundError(`The model "${model}" does not exist here: ${hint}. GET /v1/models lists them.`, {
    code: 'model_not_found',
  });
}

/** An upstream that failed to answer, as the 502 or 504 the client sees. */
export function upstreamFailure(error: unknown, upstream: Upstream, timeoutHint: string): UpstreamError {
  if (isTimeout(error)) {
    return new UpstreamError(
      504,
      `The upstream "${upstream.name}" (${upstream.describe}) did not answer in time (${timeoutHint}); try again, or raise KEYTALLY_UPSTREAM_TIMEOUT_MS.`,
      { code: 'upstream_timeout' },
    );
  }
  const code = errorCode(error) ?? (error as Error)?.message ?? 'unknown error';
  return new UpstreamError(
    502,
    `Cannot reach the upstream "${upstream.name}" at ${upstream.describe} (${code}); check that it is running and that KEYTALLY_UPSTREAM_URL is right.`,
    { code: 'upstream_unreachable' },
  );
}

/**
 * Proxies one inference request and records its usage; throws typed errors for the error handler.
 * `shape` says how the answers of `endpoint`'s API family carry usage (OpenAI's SSE by default,
 * Ollama's NDJSON for its native routes).
 */
export async function proxyInference(
  deps: ProxyDeps,
  endpoint: ProxiedPath,
  request: FastifyRequest,
  reply: FastifyReply,
  timeoutMs: number,
  shape: WireShape = OPENAI_SHAPE,
): Promise<FastifyReply | undefined> {
  const startedAt = deps.now();
  try {
    return await forward(deps, endpoint, shape, request, reply, startedAt, timeoutMs);
  } catch (error) {
    if (error instanceof RequestFailure) {
      deps.metrics.unrecorded.inc({ reason: error.reason });
      const overhead = reply.elapsedTime - (error.upstreamMs ?? 0);
      if (!reply.sent) reply.header('x-keytally-overhead-ms', Math.max(0, overhead).toFixed(2));
      if (error.reason === 'client_closed') return reply;
      throw error.error;
    }
    deps.metrics.unrecorded.inc({ reason: 'recorder_error' });
    throw error;
  }
}

/** What one proxied request carries from its validation to its usage row. */
interface Exchange {
  deps: ProxyDeps;
  request: FastifyRequest;
  reply: FastifyReply;
  auth: AuthContext;
  json: Json;
  requestedModel: string;
  upstream: Upstream;
  shape: WireShape;
  stream: boolean;
  startedAt: number;
  timeoutMs: number;
  /** What the request reserved against its limits; null when none applies. */
  ticket: Ticket | null;
}

/**
 * Checks and reserves every limit that applies; throws the 429 when one does not fit. Synchronous
 * unless a limit close to full needs the tokenizer loaded or a shared budget a lease: a key without
 * limits costs two map look-ups and no promise.
 */
function admit(
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
    return admitted.then(releaseOnClose(reply), (error: unknown) => {
      throw new RequestFailure('limited', error);
    });
  }
  return admitted ? releaseOnClose(reply)(admitted) : null;
}

// Whatever ends the response (an answer, an error, the client leaving) frees the reservation.
const releaseOnClose = (reply: FastifyReply) => (ticket: Ticket) => {
  reply.raw.once('close', ticket.release);
  return ticket;
};

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

async function forward(
  deps: ProxyDeps,
  endpoint: ProxiedPath,
  shape: WireShape,
  request: FastifyRequest,
  reply: FastifyReply,
  startedAt: number,
  timeoutMs: number,
): Promise<FastifyReply | undefined> {
  const journalProblem = deps.recorder.journalProblem?.();
  if (journalProblem) {
    // Refused before anything else: its usage could not be recorded, and it must not be served unbilled.
    throw new RequestFailure(
      'journal_unavailable',
      new ServiceUnavailableError(`usage cannot be recorded right now: ${journalProblem}; retry shortly`, {
        code: 'usage_journal_unavailable',
        headers: { 'retry-after': '5' },
      }),
    );
  }
  const { json, auth, requestedModel, upstream } = admitModelRequest(deps, request, shape.api);
  let ticket = admit(deps, auth, requestedModel, json, reply, upstream.provider);
  if (ticket instanceof Promise) ticket = await ticket;
  const stream = shape.streams(json);
  let outgoing = json;
  let stripUsageChunk = false;
  if (stream && (endpoint === '/chat/completions' || endpoint === '/completions')) {
    const options = (
      typeof json.stream_options === 'object' && json.stream_options !== null ? json.stream_options : {}
    ) as Json;
    if (options.include_usage !== true) {
      outgoing = { ...json, stream_options: { ...options, include_usage: true } };
      stripUsageChunk = true;
    }
  }
  const exchange: Exchange = {
    deps,
    request,
    reply,
    auth,
    json,
    requestedModel,
    upstream,
    shape,
    stream,
    startedAt,
    timeoutMs,
    ticket,
  };
  const outgoingRequest = {
    path: endpoint,
    method: 'POST' as const,
    headers: upstreamRequestHeaders(request),
    body: JSON.stringify(outgoing),
  };

  const sentAt = performance.now();
  if (!stream && upstream.exchange) {
    // Non-streamed: the answer is read whole through undici's handler interface.
    const pending = upstream.exchange(outgoingRequest);
    let clientGone = false;
    const onClientClose = () => {
      if (reply.raw.writableFinished) return;
      clientGone = true;
      pending.abort();
    };
    reply.raw.on('close', onClientClose);
    let response: BufferedResponse;
    try {
      response = await pending.response;
    } catch (error) {
      if (clientGone) throw new RequestFailure('client_closed', error);
      throw failureOf(error, upstream, timeoutMs, performance.now() - sentAt);
    } finally {
      reply.raw.off('close', onClientClose);
    }
    if (isStreamAnswer(shape, response)) {
      // An upstream that streams although the client did not ask: relay it, reading its usage.
      const relay = createRelay(exchange, false, noop, noop);
      relay.feed(response.body);
      relay.finish();
      return sendRelay(exchange, relay, response, sentAt);
    }
    return sendWhole(exchange, response, performance.now() - sentAt);
  }
  return forwardStreamed(exchange, outgoingRequest, stripUsageChunk, sentAt);
}

const noop = () => {};

type StreamOutcome =
  | { kind: 'relay'; relay: SseRelay; statusCode: number; headers: BufferedResponse['headers'] }
  | { kind: 'whole'; response: BufferedResponse };

/**
 * Streamed requests (and upstreams without a buffered path): the answer is handed over as it
 * arrives. A 2xx SSE answer is relayed event by event; anything else (an error status, JSON) is
 * collected and sent whole.
 */
async function forwardStreamed(
  exchange: Exchange,
  outgoing: Omit<UpstreamRequest, 'signal'>,
  stripUsageChunk: boolean,
  sentAt: number,
): Promise<FastifyReply> {
  const { reply, upstream, timeoutMs } = exchange;
  let open: OpenExchange | undefined;
  let clientGone = false;
  const onClientClose = () => {
    if (reply.raw.writableFinished) return;
    clientGone = true;
    open?.abort();
  };
  reply.raw.on('close', onClientClose);
  let outcome: StreamOutcome;
  try {
    outcome = await new Promise<StreamOutcome>((resolve, reject) => {
      let relay: SseRelay | null = null;
      let statusCode = 0;
      let headers: BufferedResponse['headers'] = {};
      const chunks: Buffer[] = [];
      let size = 0;
      const sink: ResponseSink = {
        onStart(code, given) {
          statusCode = code;
          headers = given;
          if (!isStreamAnswer(exchange.shape, { statusCode: code, headers: given })) return;
          relay = createRelay(
            exchange,
            stripUsageChunk,
            () => open?.resume(),
            () => open?.abort(),
          );
          resolve({ kind: 'relay', relay, statusCode: code, headers: given });
        },
        onData(chunk) {
          if (relay) return relay.feed(chunk);
          chunks.push(chunk);
          size += chunk.length;
          return true;
        },
        onEnd() {
          if (relay) relay.finish();
          else
            resolve({ kind: 'whole', response: { statusCode, headers, body: Buffer.concat(chunks, size) } });
        },
        onError(error) {
          if (relay) relay.fail(error);
          else reject(error);
        },
      };
      open = upstream.open ? upstream.open(outgoing, sink) : openViaSend(upstream, outgoing, sink);
    });
  } catch (error) {
    if (clientGone) throw new RequestFailure('client_closed', error);
    throw failureOf(error, upstream, timeoutMs, performance.now() - sentAt);
  } finally {
    // From here a client leaving destroys the relay, which stops the upstream itself.
    reply.raw.off('close', onClientClose);
  }
  if (outcome.kind === 'whole') return sendWhole(exchange, outcome.response, performance.now() - sentAt);
  return sendRelay(exchange, outcome.relay, outcome, sentAt);
}

/** A 2xx answer in the shape's stream type (SSE, NDJSON): relayed event by event. */
function isStreamAnswer(
  shape: WireShape,
  response: { statusCode: number; headers: UpstreamResponse['headers'] },
): boolean {
  const type = response.headers['content-type'];
  return (
    response.statusCode >= 200 &&
    response.statusCode < 300 &&
    typeof type === 'string' &&
    type.startsWith(shape.streamType)
  );
}

function failureOf(
  error: unknown,
  upstream: Upstream,
  timeoutMs: number,
  upstreamMs?: number,
): RequestFailure {
  const failure = upstreamFailure(error, upstream, `${timeoutMs} ms`);
  return new RequestFailure(
    failure.statusCode === 504 ? 'upstream_timeout' : 'upstream_unreachable',
    failure,
    upstreamMs,
  );
}

/** The usage row of an exchange, estimating what the upstream did not report. */
async function buildRow(
  exchange: Exchange,
  model: string | undefined,
  provided: TokenCounts | null,
  completionText: string,
  aborted: boolean,
): Promise<UsageEvent> {
  let counts = provided;
  const estimated = !(provided && !aborted);
  if (estimated) {
    const prompt = provided?.prompt ?? (await estimatePromptTokens(exchange.json));
    const completion = Math.max(provided?.completion ?? 0, await countTextTokens(completionText));
    counts = { prompt, completion, total: prompt + completion };
  }
  const row = rowFor(exchange.auth, {
    // The upstream's own name for the model; a NUL in it could not be stored on PostgreSQL.
    model: (model ?? exchange.requestedModel).replaceAll('\u0000', ''),
    endpoint: pathOf(exchange.request.url),
    counts: counts ?? { prompt: 0, completion: 0, total: 0 },
    estimated,
    aborted,
    stream: exchange.stream,
    upstream: exchange.upstream.name,
    startedAt: exchange.startedAt,
    durationMs: exchange.deps.now() - exchange.startedAt,
  });
  priceUsageRow(exchange.deps.prices, exchange.upstream.provider, row);
  return row;
}

async function record(deps: ProxyDeps, row: UsageEvent, ticket: Ticket | null): Promise<void> {
  // Settled before the row is journaled: a limits reload that flushes the journal then finds the
  // row in the database and this request's usage in no counter twice.
  ticket?.settle({
    model: row.model,
    total_tokens: row.total_tokens ?? 0,
    cost_nanos: row.cost_nanos ?? null,
  });
  await deps.recorder.record(row);
  deps.metrics.countTokens(row.source, row.model, row.prompt_tokens ?? 0, row.completion_tokens ?? 0);
  if (row.cost_nanos) deps.metrics.countCost(row.source, row.model, row.cost_nanos);
  if (row.api_key_id) deps.metrics.noteKeyTraffic(row.api_key_id, row.total_tokens ?? 0);
}

/** The relay of one streamed answer (SSE or NDJSON), recording its usage at its end (or what was relayed, if cut). */
function createRelay(
  exchange: Exchange,
  stripUsageChunk: boolean,
  resume: () => void,
  abort: () => void,
): SseRelay {
  const { deps, request, shape } = exchange;
  return new SseRelay({
    format: shape.format,
    usage: shape.streamUsage(),
    stripUsageChunk,
    resume,
    abort,
    onEnd: async (usage) => {
      // The last events are usually still in the socket, which Node corks from a response's write to
      // the next tick: keep it corked until the response ends (after the journal write), so they and
      // the chunked terminator leave in one writev, not two write(2)s (the terminator's own write was
      // 5% of a streamed request's CPU). The response's end uncorks fully; an error destroys the socket.
      exchange.reply.raw.socket?.cork();
      try {
        await record(
          deps,
          await buildRow(exchange, usage.model, usage.counts, usage.completionText, false),
          exchange.ticket,
        );
      } catch (error) {
        deps.metrics.unrecorded.inc({ reason: 'recorder_error' });
        request.log.error({ err: error }, 'could not record the usage of a stream');
        throw error;
      }
    },
    onAbandon: (usage) => {
      // The client went away or the upstream broke mid-stream: record what was streamed so far.
      buildRow(exchange, usage.model, usage.counts, usage.completionText, true)
        .then((row) => record(deps, row, exchange.ticket))
        .catch((failure) => {
          deps.metrics.unrecorded.inc({ reason: 'recorder_error' });
          request.log.error({ err: failure }, 'could not record usage of an interrupted stream');
        });
    },
  });
}

function sendRelay(
  exchange: Exchange,
  relay: SseRelay,
  response: { statusCode: number; headers: BufferedResponse['headers'] },
  sentAt: number,
): FastifyReply {
  const { reply } = exchange;
  const overhead = reply.elapsedTime - (performance.now() - sentAt);
  reply
    .code(response.statusCode)
    .headers(responseHeaders(response.headers))
    .header('x-keytally-overhead-ms', overhead.toFixed(2));
  exchange.ticket?.applyHeaders(reply, response.headers);
  return reply.send(relay);
}

/** Sends a whole answer; a 2xx one is recorded (journaled) before it goes out. */
async function sendWhole(
  exchange: Exchange,
  response: BufferedResponse,
  upstreamMs: number,
): Promise<FastifyReply> {
  const { deps, reply } = exchange;
  if (response.statusCode >= 200 && response.statusCode < 300) {
    const text = response.body.toString('utf8');
    // The usual answer carries usage: read it without building the whole body's objects.
    let usage = exchange.shape.readWholeText?.(text) ?? null;
    if (!usage) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      usage = exchange.shape.readWhole(parsed);
    }
    await record(
      deps,
      await buildRow(exchange, usage.model, usage.usage, usage.completionText, false),
      exchange.ticket,
    );
  } else {
    deps.metrics.unrecorded.inc({ reason: 'upstream_status' });
  }
  const overhead = reply.elapsedTime - upstreamMs;
  reply
    .code(response.statusCode)
    .headers(responseHeaders(response.headers))
    .header('x-keytally-overhead-ms', overhead.toFixed(2));
  exchange.ticket?.applyHeaders(reply, response.headers);
  return reply.send(response.body);
}

interface RowInput {
  model: string;
  endpoint: string;
  counts: TokenCounts;
  estimated: boolean;
  aborted: boolean;
  stream: boolean;
  upstream: string;
  startedAt: number;
  durationMs: number;
}

/** A usage row with the reference section 2.4 fields plus keytally's own. */
export function rowFor(auth: AuthContext, input: RowInput): UsageEvent {
  return {
    id: usageRowId(input.startedAt),
    user_id: auth.user.id,
    user_name: auth.user.name,
    source: auth.source ?? 'web',
    api_key_id: auth.apiKey?.id ?? null,
    api_key_name: auth.apiKey?.name ?? '',
    model: input.model,
    endpoint: input.endpoint,
    prompt_tokens: input.counts.prompt,
    completion_tokens: input.counts.completion,
    total_tokens: input.counts.total,
    duration_ms: Math.max(0, Math.round(input.durationMs)),
    created_at: input.startedAt,
    usage_origin: input.estimated ? 'estimated' : 'provider',
    aborted: input.aborted ? 1 : 0,
    stream: input.stream ? 1 : 0,
    upstream: input.upstream,
    // Undefined (left out of the journal line, NULL in the database) when not reported.
    cached_tokens: input.counts.cached,
    cache_write_tokens: input.counts.cacheWrite,
    reasoning_tokens: input.counts.reasoning,
  };
}
