import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Plugin } from 'vite';

/**
 * Build-time only (vite.config.ts; never part of the browser bundle): writes `x.br` and `x.gz` next
 * to every text asset of the dashboard build, which @fastify/static serves by Accept-Encoding
 * (`preCompressed`). Compressing once at build time lets brotli run at its slowest, best setting:
 * the ~384 KB of JS shrink to ~100 KB (br) without costing the server CPU per request.
 */

const COMPRESSIBLE = /\.(?:js|mjs|css|html|svg|json|txt|map|wasm)$/;
// Below ~1 KB the headers cost more than compression saves (the same threshold as @fastify/compress).
const MIN_BYTES = 1024;

export interface PrecompressedFile {
  file: string;
  bytes: number;
  br: number;
  gz: number;
}

function* walk(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

/** Writes .br and .gz beside each compressible file of `dir` (1 KB or more); returns the sizes. */
export function precompressDir(dir: string): PrecompressedFile[] {
  const written: PrecompressedFile[] = [];
  for (const file of walk(dir)) {
    if (!COMPRESSIBLE.test(file)) continue;
    const content = fs.readFileSync(file);
    if (content.length < MIN_BYTES) continue;
    const br = zlib.brotliCompressSync(content, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: content.length,
      },
    });
    const gz = zlib.gzipSync(content, { level: zlib.constants.Z_BEST_COMPRESSION });
    fs.writeFileSync(`${file}.br`, br);
    fs.writeFileSync(`${file}.gz`, gz);
    written.push({ file: path.relative(dir, file), bytes: content.length, br: br.length, gz: gz.length });
  }
  return written;
}

export function precompress(): Plugin {
  return {
    name: 'keytally-precompress',
    apply: 'build',
    writeBundle(options) {
      if (options.dir) precompressDir(options.dir);
    },
  };
}
