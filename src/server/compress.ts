import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';

/**
 * Compresses JSON answers of keytally's own API, `/api/auth/*` (brotli or gzip, whichever the client
 * accepts). A month of the admin Sources answer with 1,000 keys is 8 MB of JSON. The hook is attached
 * per route as `/api/auth/*` routes are registered, so the proxy paths (the hot path: `/v1/*` and
 * Ollama's `/api/chat`, `/api/generate`, `/api/tags`…, whose upstream answers pass through as they
 * come) never run it.
 */
const COMPRESSED_PREFIX = '/api/auth/';

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

// Below ~1 KB compression saves less than a packet and costs a zlib stream.
const MIN_BYTES = 1024;
// Brotli's default quality 11 takes ~1 s for 8 MB; 5 compresses almost as well at gzip's speed.
const BROTLI_OPTIONS = {
  params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 5,
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
  },
};

type Encoding = 'br' | 'gzip';

/** The preferred encoding the client accepts (q=0 refuses), or null. */
export function chooseEncoding(header: string | undefined): Encoding | null {
  if (!header) return null;
  const accepted = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const weight = q ? Number(q.slice(2)) : 1;
    accepted.set(name.trim(), Number.isFinite(weight) ? weight : 0);
  }
  const weightOf = (name: Encoding) => accepted.get(name) ?? accepted.get('*') ?? 0;
  const br = weightOf('br');
  const gz = weightOf('gzip');
  if (br > 0 && br >= gz) return 'br';
  if (gz > 0) return 'gzip';
  return null;
}

// The admin Sources answer is one cached Buffer while the data is unchanged (usage.service.ts), so
// its compressed form is cached by identity too: a dashboard polling every 5 s compresses it once.
const compressedOf = new WeakMap<Buffer, Partial<Record<Encoding, Buffer>>>();

async function compress(payload: string | Buffer, encoding: Encoding): Promise<Buffer> {
  const cached = typeof payload === 'string' ? undefined : compressedOf.get(payload);
  const hit = cached?.[encoding];
  if (hit) return hit;
  const bytes = encoding === 'br' ? await brotli(payload, BROTLI_OPTIONS) : await gzip(payload);
  if (typeof payload !== 'string') compressedOf.set(payload, { ...cached, [encoding]: bytes });
  return bytes;
}

const compressJson: onSendHookHandler = async (
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
) => {
  if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
  reply.header('vary', 'accept-encoding');
  const type = String(reply.getHeader('content-type') ?? '');
  if (!type.startsWith('application/json') || reply.hasHeader('content-encoding')) return payload;
  if (Buffer.byteLength(payload) < MIN_BYTES) return payload;
  const encoding = chooseEncoding(request.headers['accept-encoding']);
  if (!encoding) return payload;
  const bytes = await compress(payload, encoding);
  reply.header('content-encoding', encoding);
  reply.removeHeader('content-length');
  return bytes;
};

/** Must run before the `/api/auth/*` routes are registered: it hooks each one as it is added. */
export function registerApiCompression(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(COMPRESSED_PREFIX)) return;
    const existing = route.onSend;
    route.onSend = existing
      ? [...(Array.isArray(existing) ? existing : [existing]), compressJson]
      : compressJson;
  });
}
