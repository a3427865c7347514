import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestFailure, upstreamFailure } from './failures.ts';
import { responseHeaders, upstreamRequestHeaders } from './headers.ts';
import type { BufferedResponse, Upstream, UpstreamRequest, UpstreamTimeout } from './upstreams.ts';

/**
 * Requests that reach an upstream but are not usage rows (Ollama's /api/show, /api/tags and
 * /api/version, Anthropic's count_tokens): forwarded with the same header hygiene as the inference
 * routes, the answer read whole.
 */
export interface UnrecordedResponse extends BufferedResponse {
  /** Time spent waiting on the upstream, excluded from x-keytally-overhead-ms. */
  upstreamMs: number;
}

export async function fetchUnrecorded(
  upstream: Upstream,
  request: Omit<UpstreamRequest, 'signal' | 'headers'> & { headers?: Record<string, string> },
  /** The upstream's own by default; /api/tags bounds each upstream's list tighter. */
  timeout: UpstreamTimeout = upstream.timeout,
): Promise<UnrecordedResponse> {
  const sentAt = performance.now();
  try {
    const response = await upstream.send({
      headers: { accept: 'application/json', 'accept-encoding': 'identity' },
      ...request,
      signal: AbortSignal.timeout(timeout.ms),
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    return {
      statusCode: response.statusCode,
      headers: response.headers,
      body: Buffer.concat(chunks),
      upstreamMs: performance.now() - sentAt,
    };
  } catch (error) {
    throw upstreamFailure(error, upstream, timeout);
  }
}

/** The client's request body, forwarded to `path` of `upstream` with its cleaned headers. */
export function forwardBody(
  upstream: Upstream,
  request: FastifyRequest,
  path: string,
  body: unknown,
): Promise<UnrecordedResponse> {
  return fetchUnrecorded(upstream, {
    path,
    method: 'POST',
    headers: upstreamRequestHeaders(request),
    body: JSON.stringify(body),
  });
}

/** Sends an upstream's answer as it came (status, body, end-to-end headers), with keytally's overhead. */
export function sendUpstreamAnswer(reply: FastifyReply, response: UnrecordedResponse): FastifyReply {
  return reply
    .code(response.statusCode)
    .headers(responseHeaders(response.headers))
    .header('x-keytally-overhead-ms', Math.max(0, reply.elapsedTime - response.upstreamMs).toFixed(2))
    .send(response.body);
}

/** Runs admission for a route that records no usage: its refusals are plain errors. */
export function unwrapFailure<T>(admit: () => T): T {
  try {
    return admit();
  } catch (error) {
    if (error instanceof RequestFailure) throw error.error;
    throw error;
  }
}
