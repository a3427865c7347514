import { performance } from 'node:perf_hooks';
import type { FastifyReply } from 'fastify';
import { responseHeaders } from './headers.ts';
import type { Exchange } from './proxy.ts';
import { SseRelay } from './sse-relay.ts';
import type { BufferedResponse } from './upstreams.ts';
import { buildRow, record } from './usage-row.ts';

/** The relay of one streamed answer (SSE or NDJSON), recording its usage at its end (or what was relayed, if cut). */
export function createRelay(
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
          await buildRow(exchange, usage.model, usage.counts, () => usage.completionText, false),
          exchange.ticket,
        );
      } catch (error) {
        exchange.ticket?.release();
        deps.metrics.unrecorded.inc({ reason: 'recorder_error' });
        request.log.error({ err: error }, 'could not record the usage of a stream');
        throw error;
      }
    },
    onAbandon: (usage) => {
      // The client went away or the upstream broke mid-stream: record what was streamed so far.
      buildRow(exchange, usage.model, usage.counts, () => usage.completionText, true)
        .then((row) => record(deps, row, exchange.ticket))
        .catch((failure) => {
          exchange.ticket?.release();
          deps.metrics.unrecorded.inc({ reason: 'recorder_error' });
          request.log.error({ err: failure }, 'could not record usage of an interrupted stream');
        });
    },
  });
}

export function sendRelay(
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
  const { ticket } = exchange;
  if (ticket) {
    ticket.writeHeaders(reply);
    // Settled at the relay's end; should that never come (a stream cut before it began), the
    // response's close frees the reservation.
    reply.raw.once('close', () => ticket.release());
  }
  // The relay writes into the response itself (sse-relay.ts); Fastify's onResponse hooks (metrics,
  // the access line) still run when it finishes, its onSend hooks do not (no proxy route has one:
  // compress.ts keeps to /api/auth). The headers leave with the first event.
  reply.hijack();
  const raw = reply.raw;
  const headers = reply.getHeaders();
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) raw.setHeader(name, value);
  }
  relay.attach(raw);
  return reply;
}

/** Sends a whole answer; a 2xx one is recorded (journaled) before it goes out. */
export async function sendWhole(
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
  const { ticket } = exchange;
  if (!ticket) return reply.send(response.body);
  ticket.writeHeaders(reply);
  const sent = reply.send(response.body);
  // A recorded answer settled its ticket above; any other (a non-2xx) frees it once it is out.
  ticket.release();
  return sent;
}
