import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('request ids', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ dialect: 'sqlite' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('echoes a well-formed x-request-id and generates one otherwise', async () => {
    const given = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'trace-42.a' },
    });
    expect(given.headers['x-request-id']).toBe('trace-42.a');

    const none = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    const hostile = await t.app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { 'x-request-id': 'bad id\twith spaces' },
    });
    expect(hostile.statusCode).toBe(401);
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
