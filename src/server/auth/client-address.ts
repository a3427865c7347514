import type { FastifyRequest } from 'fastify';

/**
 * The client address that rate limits are keyed on. The one seam for KEYTALLY_TRUST_PROXY
 * (decisions.md section 2, Access issue): until that resolves `X-Forwarded-For` through trusted
 * hops, this is the socket address (Fastify runs with `trustProxy: false`), which a client cannot
 * spoof. The reference keys on a client-supplied header (reference-control section 3.3).
 */
export function clientAddressOf(request: FastifyRequest): string {
  return request.ip;
}
