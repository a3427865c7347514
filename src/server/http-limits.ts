import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyHttpOptions, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorBody, sendError } from './errors.ts';

/**
 * How long a client may take to send its request. Node's defaults let a client that declares
 * `content-length: 100` and sends 16 bytes hold a connection forever (Fastify sets requestTimeout 0).
 * Only the request is bounded: a long streamed answer is bounded by KEYTALLY_UPSTREAM_TIMEOUT_MS, so
 * there is no socket inactivity timeout (it would cut a stream while the model thinks).
 */
export interface HttpTimeouts {
  /** The request line and headers must arrive within this. */
  headersMs: number;
  /** The whole request, body included. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this; above common load balancers' 60 s. */
  keepAliveMs: number;
  /** How often Node checks connections against the bounds (its 30 s default would add up to 30 s). */
  checkIntervalMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 72_000,
  checkIntervalMs: 1_000,
};

/** The Fastify options that apply the bounds and answer the framework's own errors in our envelopes. */
export function httpLimitOptions(
  timeouts: HttpTimeouts,
): Pick<
  FastifyHttpOptions<http.Server>,
  | 'requestTimeout'
  | 'keepAliveTimeout'
  | 'connectionTimeout'
  | 'http'
  | 'frameworkErrors'
  | 'clientErrorHandler'
> {
  return {
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: 0,
    http: {
      headersTimeout: Math.min(timeouts.headersMs, timeouts.requestMs),
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
    },
    // A malformed percent-encoding (400) or an over-long path parameter (414), found while routing.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) =>
      sendError(error, request, reply),
    clientErrorHandler: (error, socket) => answerClientError(error as ClientError, socket),
  };
}

/** Node's clientError: `rawPacket` is the Buffer read so far (Fastify's type says otherwise). */
type ClientError = Error & { code?: string; rawPacket?: unknown };

const REQUEST_LINE = /^[A-Z]+ (\S+) HTTP\/\d/;

/** The path of the request a client error belongs to, when the bytes read so far show it. */
function pathOfClientError(error: ClientError, socket: Socket): string {
  const packet = error.rawPacket;
  const raw = Buffer.isBuffer(packet) ? packet.subarray(0, 2048).toString('latin1') : undefined;
  const fromPacket = raw ? REQUEST_LINE.exec(raw)?.[1] : undefined;
  if (fromPacket) return fromPacket;
  // A timed-out request whose headers were read: Node's parser holds it.
  const parser = (socket as unknown as { parser?: { incoming?: { url?: string } } }).parser;
  return parser?.incoming?.url ?? '/';
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers over 16 KB, a request
 * line that is not HTTP, a request that did not arrive in time): answered in the envelope of the
 * path they were for, then the connection is closed, as Node itself would.
 */
function answerClientError(error: ClientError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let appError: AppError;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    appError = new AppError(408, 'the request did not arrive in time');
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    appError = new AppError(431, 'the request line and headers are too large (16 KB at most)');
  } else {
    appError = new AppError(400, 'malformed HTTP request');
  }
  if (socket.writable) {
    const body = JSON.stringify(errorBody(appError, pathOfClientError(error, socket), randomUUID()));
    const status = appError.statusCode;
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
