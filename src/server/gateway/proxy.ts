import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/context.ts';
import type { PriceBook } from '../cost/price-book.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Ticket } from '../limits/limiter.ts';
import type { Limits } from '../limits/limits.service.ts';
import type { GatewayMetrics } from '../metrics/registry.ts';
import type { UsageRecorder } from '../usage/recorder.ts';
import { admit, admitModelRequest } from './admission.ts';
import { createRelay, sendRelay, sendWhole } from './answer.ts';
import { RequestFailure, upstreamFailure } from './failures.ts';
import { upstreamRequestHeaders } from './headers.ts';
import type { OllamaInferencePath } from './ollama-shapes.ts';
import type { SseRelay } from './sse-relay.ts';
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
import { OPENAI_SHAPE, type WireShape } from './usage-shapes.ts';

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
 * Proxies one inference request and records its usage; throws typed errors for the error handler.
 * `shape` says how the answers of `endpoint`'s API family carry usage (OpenAI's SSE by default,
 * Ollama's NDJSON for its native routes).
 */
export async function proxyInference(
  deps: ProxyDeps,
  endpoint: ProxiedPath,
  request: FastifyRequest,
  reply: FastifyReply,
  shape: WireShape = OPENAI_SHAPE,
): Promise<FastifyReply | undefined> {
  const startedAt = deps.now();
  try {
    return await forward(deps, endpoint, shape, request, reply, startedAt);
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
export interface Exchange {
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
  /** What the request reserved against its limits; null when none applies. */
  ticket: Ticket | null;
}

async function forward(
  deps: ProxyDeps,
  endpoint: ProxiedPath,
  shape: WireShape,
  request: FastifyRequest,
  reply: FastifyReply,
  startedAt: number,
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
  try {
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
        throw failureOf(error, upstream, performance.now() - sentAt);
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
  } catch (error) {
    // Ended before a recorded answer (the upstream failed, the client left, the row could not be
    // journaled): the reservation is freed now, and the error answer still says the limits.
    if (ticket) {
      ticket.release();
      if (!reply.sent) ticket.writeHeaders(reply);
    }
    throw error;
  }
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
  const { reply, upstream } = exchange;
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
          if (!relay) return reject(error);
          // Mid-stream: the client gets a cut stream (its headers are out) and an aborted row is recorded.
          exchange.request.log.warn({ err: error, upstream: upstream.name }, 'the upstream broke mid-stream');
          relay.fail();
        },
      };
      open = upstream.open ? upstream.open(outgoing, sink) : openViaSend(upstream, outgoing, sink);
    });
  } catch (error) {
    if (clientGone) throw new RequestFailure('client_closed', error);
    throw failureOf(error, upstream, performance.now() - sentAt);
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

function failureOf(error: unknown, upstream: Upstream, upstreamMs?: number): RequestFailure {
  const failure = upstreamFailure(error, upstream);
  return new RequestFailure(
    failure.statusCode === 504 ? 'upstream_timeout' : 'upstream_unreachable',
    failure,
    upstreamMs,
  );
}
