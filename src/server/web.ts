import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { isApiPath, pathOf } from './auth/paths.ts';
import { NotFoundError } from './errors.ts';

export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web');

/**
 * The dashboard must not be framed by another site (clickjacking: a hidden "Delete user" or
 * "Revoke" under a decoy button), and the browser must not guess content types.
 */
const WEB_SECURITY_HEADERS = {
  'content-security-policy': "frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
} as const;

// Vite names everything under assets/ by its content hash: a changed file is a new URL, so a
// browser may keep these for a year without asking again. index.html (and anything else) names
// those URLs, so it is revalidated on every load.
const HASHED_ASSET_CACHE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/**
 * Serves the Vite build of src/web at `/`; unknown non-API GETs get index.html (client-side routes;
 * the app shows its not-found page for an unknown /app/… path). Assets are sent as the .br or .gz
 * file the build wrote beside them (src/web/build/precompress.ts) when the client accepts it.
 */
export async function registerWeb(app: FastifyInstance, webRoot = WEB_ROOT): Promise<void> {
  const hasBuild = fs.existsSync(path.join(webRoot, 'index.html'));
  if (hasBuild) {
    await app.register(fastifyStatic, {
      root: webRoot,
      wildcard: false,
      index: false,
      preCompressed: true,
      // Set per file below; @fastify/static's own header would say max-age=0 for everything.
      cacheControl: false,
      setHeaders: (response, file) => {
        response.headers(WEB_SECURITY_HEADERS);
        const hashed = path.relative(webRoot, file).startsWith(`assets${path.sep}`);
        response.header('cache-control', hashed ? HASHED_ASSET_CACHE : REVALIDATE);
      },
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const urlPath = pathOf(request.url);
    // HEAD too: uptime monitors and link checkers probe the dashboard with it.
    const read = request.method === 'GET' || request.method === 'HEAD';
    if (read && !isApiPath(urlPath) && !urlPath.startsWith('/assets/')) {
      reply.headers(WEB_SECURITY_HEADERS);
      if (hasBuild) return reply.type('text/html').header('cache-control', REVALIDATE).sendFile('index.html');
      return reply
        .type('text/plain')
        .send('keytally is running, but the dashboard is not built: run `npm run build` (npm ci does it).');
    }
    throw new NotFoundError(`no route for ${request.method} ${urlPath}`);
  });
}
