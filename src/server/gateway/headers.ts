import type { FastifyRequest } from 'fastify';
import type { UpstreamResponse } from './upstreams.ts';

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
