import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWeb } from '../../src/server/web.ts';
import { precompressDir } from '../../src/web/build/precompress.ts';
import { makeTempDir } from '../helpers/db.ts';
import { REPO_ROOT } from '../helpers/process.ts';

// Found in QA: the dashboard could be framed by any site (clickjacking of its Delete/Revoke
// buttons). No database is involved: registerWeb only serves files.
describe('dashboard responses', () => {
  let app: FastifyInstance;
  let webRoot: string;
  beforeAll(async () => {
    webRoot = makeTempDir();
    fs.mkdirSync(path.join(webRoot, 'assets'));
    fs.writeFileSync(path.join(webRoot, 'index.html'), '<!doctype html><title>keytally</title>');
    fs.writeFileSync(path.join(webRoot, 'assets', 'app.js'), 'console.log(1)');
    app = Fastify();
    await registerWeb(app, webRoot);
  });
  afterAll(async () => {
    await app?.close();
    fs.rmSync(webRoot, { recursive: true, force: true });
  });

  it.each(['/', '/app/users', '/index.html', '/assets/app.js'])(
    'GET %s may not be framed and is not content-sniffed',
    async (url) => {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-security-policy']).toBe("frame-ancestors 'none'");
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['referrer-policy']).toBe('same-origin');
    },
  );

  it('answers HEAD on a dashboard page like GET, without a body', async () => {
    const response = await app.inject({ method: 'HEAD', url: '/app/usage' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body).toBe('');
  });

  it('still answers 404 for a missing asset', async () => {
    const response = await app.inject({ method: 'GET', url: '/assets/missing.js' });
    expect(response.statusCode).toBe(404);
  });
});

// Found in QA: 384 KB of uncompressed JS with `max-age=0` on every cold load.
describe('dashboard assets: precompressed, cached by content hash', () => {
  let app: FastifyInstance;
  let webRoot: string;
  const script = `export const rows = [${Array.from({ length: 400 }, (_, i) => `{"id":${i},"label":"row ${i}"}`).join(',')}];\n`;
  const assetUrl = '/assets/index-Ab12Cd34.js';
  beforeAll(async () => {
    webRoot = makeTempDir();
    fs.mkdirSync(path.join(webRoot, 'assets'));
    fs.writeFileSync(path.join(webRoot, 'index.html'), '<!doctype html><title>keytally</title>');
    fs.writeFileSync(path.join(webRoot, assetUrl), script);
    fs.writeFileSync(path.join(webRoot, 'assets', 'tiny-Ef56Gh78.css'), 'body{margin:0}');
    const written = precompressDir(webRoot);
    // index.html and the tiny stylesheet are under 1 KB: not worth compressing.
    expect(written.map((entry) => entry.file)).toEqual([path.join('assets', 'index-Ab12Cd34.js')]);
    app = Fastify();
    await registerWeb(app, webRoot);
  });
  afterAll(async () => {
    await app?.close();
    fs.rmSync(webRoot, { recursive: true, force: true });
  });

  it.each([
    ['br, gzip, deflate', 'br', (body: Buffer) => zlib.brotliDecompressSync(body)],
    ['gzip, deflate', 'gzip', (body: Buffer) => zlib.gunzipSync(body)],
    ['identity', undefined, (body: Buffer) => body],
  ] as const)(
    'Accept-Encoding %s gets %s, cached for a year as immutable',
    async (accept, encoding, decode) => {
      const response = await app.inject({
        method: 'GET',
        url: assetUrl,
        headers: { 'accept-encoding': accept },
      });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-encoding']).toBe(encoding);
      expect(response.headers['content-type']).toMatch(/^text\/javascript|^application\/javascript/);
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(response.headers.vary).toMatch(/accept-encoding/i);
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(decode(response.rawPayload).toString()).toBe(script);
      if (encoding) expect(response.rawPayload.length).toBeLessThan(script.length / 3);
    },
  );

  it('serves a small asset uncompressed, still immutable', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/assets/tiny-Ef56Gh78.css',
      headers: { 'accept-encoding': 'br, gzip' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-encoding']).toBeUndefined();
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(response.body).toBe('body{margin:0}');
  });

  it.each(['/', '/index.html', '/app/usage', '/app/no-such-page'])(
    'GET %s answers index.html that the browser revalidates (no-cache)',
    async (url) => {
      const response = await app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'br, gzip' } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/html/);
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.body).toContain('<title>keytally</title>');
    },
  );

  it('`vite build` (npm run build, prepare) writes .br and .gz beside every large asset', async () => {
    const outDir = makeTempDir();
    try {
      execFileSync(
        process.execPath,
        [
          path.join(REPO_ROOT, 'node_modules/vite/bin/vite.js'),
          'build',
          '--logLevel',
          'warn',
          '--outDir',
          outDir,
        ],
        { cwd: REPO_ROOT, stdio: 'pipe', timeout: 170_000 },
      );
      const assets = fs.readdirSync(path.join(outDir, 'assets'));
      const originals = assets.filter((name) => /\.(js|css)$/.test(name));
      expect(originals.some((name) => name.endsWith('.js'))).toBe(true);
      for (const name of originals) {
        const original = fs.readFileSync(path.join(outDir, 'assets', name));
        if (original.length < 1024) continue;
        const br = fs.readFileSync(path.join(outDir, 'assets', `${name}.br`));
        const gz = fs.readFileSync(path.join(outDir, 'assets', `${name}.gz`));
        expect(zlib.brotliDecompressSync(br).equals(original)).toBe(true);
        expect(zlib.gunzipSync(gz).equals(original)).toBe(true);
      }
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  }, 180_000);
});
