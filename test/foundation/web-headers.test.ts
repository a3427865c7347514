import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWeb } from '../../src/server/web.ts';
import { makeTempDir } from '../helpers/db.ts';

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
