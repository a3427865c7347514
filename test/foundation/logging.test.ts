import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LazyChildLogger, loggerOptions } from '../../src/server/logger.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

/** A pino logger writing parsed lines into an array. */
function capture(level: string): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(loggerOptions(level), {
    write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { logger, lines };
}

describe('the per-request logger', () => {
  it('logs with the request bindings at enabled levels only, through one child', () => {
    const { logger, lines } = capture('info');
    const log = new LazyChildLogger(logger, { reqId: 'r-1' }, {});
    log.debug('not at info');
    expect(lines).toHaveLength(0);
    expect(log.level).toBe('info');
    log.info({ a: 1 }, 'first');
    log.warn('second');
    expect(lines.map((line) => [line.reqId, line.msg, line.level])).toEqual([
      ['r-1', 'first', 30],
      ['r-1', 'second', 40],
    ]);
    expect(lines[0]?.a).toBe(1);
    log.child({ part: 'x' }).error('third');
    expect(lines[2]).toMatchObject({ reqId: 'r-1', part: 'x', msg: 'third' });
    log.level = 'debug';
    log.debug('now on');
    expect(lines.at(-1)).toMatchObject({ reqId: 'r-1', msg: 'now on' });
    // The parent's level is untouched by the request's.
    expect(logger.level).toBe('info');
  });
});

describe('the access log', () => {
  const lines: Record<string, unknown>[] = [];
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      dialect: 'sqlite',
      settings: { logLevel: 'info', apiKeys: 'legacy-secret-for-logs' },
      logDestination: { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('writes one line per request with its id, route and status, and never the credential', async () => {
    lines.length = 0;
    const response = await t.app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { 'x-request-id': 'access-7', authorization: 'Bearer legacy-secret-for-logs' },
    });
    expect(response.statusCode).toBe(200);
    const access = lines.filter((line) => line.msg === 'request');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ reqId: 'access-7', method: 'GET', path: '/v1/models', status: 200 });
    expect(typeof access[0]?.ms).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('legacy-secret-for-logs');
  });
});
