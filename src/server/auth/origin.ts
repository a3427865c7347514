import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** `scheme://host[:port]` of a URL, default ports dropped; null when it is not an http(s) URL. */
function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : null;
  } catch {
    return null;
  }
}

/**
 * CSRF (decisions.md section 11): a state-changing request whose authority can only come from
 * cookies (it carries no Authorization / x-api-key / xi-api-key header) must come from keytally's
 * own origin: the request's own (`Host`) or KEYTALLY_PUBLIC_URL's when a proxy rewrites `Host`.
 * SameSite=Lax alone let a sibling subdomain (same-site) or a browser without Sec-Fetch-Site through.
 *
 * Browsers send `Origin` on every non-GET fetch and form post (`null` when they hide it, refused);
 * `Referer` is the fallback. A request with neither is not from a current browser (so a page cannot
 * have forged it) and passes unless it says `Sec-Fetch-Site: cross-site`: LocalAI-compatible scripts
 * that log in and reuse the cookie keep working.
 */
export function checkRequestOrigin(request: FastifyRequest, publicUrl: string | undefined): void {
  if (SAFE_METHODS.has(request.method)) return;
  if (header(request, 'authorization') || header(request, 'x-api-key') || header(request, 'xi-api-key')) {
    return;
  }
  const origin = header(request, 'origin');
  const referer = origin === undefined ? header(request, 'referer') : undefined;
  const claimed = origin ?? referer;
  if (claimed === undefined) {
    // Browsers that send Sec-Fetch-Site send Origin too on these methods; without Origin, only an
    // explicit cross-site is refused (as before Origin was checked).
    if (header(request, 'sec-fetch-site')?.toLowerCase() !== 'cross-site') return;
    throw new ForbiddenError('cross-site request refused');
  }
  const from = claimed === 'null' ? null : originOf(claimed);
  if (
    from !== null &&
    (from === originOf(`${request.protocol}://${request.host}`) || from === originOf(publicUrl ?? ''))
  ) {
    return;
  }
  throw new ForbiddenError(
    `cross-site request refused: ${origin === undefined ? 'Referer' : 'Origin'} is not this server's origin (set KEYTALLY_PUBLIC_URL when keytally is behind a proxy)`,
  );
}
