import fs from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger, LazyChildLogger, loggerOptions, selectLogFormat } from '../../src/server/logger.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { makeTempDir } from '../helpers/db.ts';
import { freePort, type KeytallyProcess, runKeytally, startKeytally } from '../helpers/process.ts';

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

describe('the log format', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = makeTempDir();
    dirs.push(dir);
    return dir;
  };

  it('is pretty on a terminal and JSON otherwise, unless KEYTALLY_LOG_FORMAT says', () => {
    expect(selectLogFormat(undefined, true)).toBe('pretty');
    expect(selectLogFormat(undefined, false)).toBe('json');
    expect(selectLogFormat('json', true)).toBe('json');
    expect(selectLogFormat('pretty', false)).toBe('pretty');
    expect(loadConfig({}, { KEYTALLY_LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(loadConfig({ logFormat: 'json' }, { KEYTALLY_LOG_FORMAT: 'pretty' }).logFormat).toBe('json');
    expect(loadConfig({}, {}).logFormat).toBeUndefined();
    expect(() => loadConfig({}, { KEYTALLY_LOG_FORMAT: 'yaml' })).toThrow(
      /KEYTALLY_LOG_FORMAT: must be json or pretty/,
    );
  });

  it('pretty lines are readable, uncoloured off a terminal, and still redact credentials', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) }, 'pretty');
    logger.info({ password: 'hunter2', port: 4000 }, 'keytally is ready');
    expect(lines).toHaveLength(1);
    const [line = ''] = lines;
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: keytally is ready\n/);
    expect(line).toContain('port: 4000');
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('\u001b[');
  });

  it('a real process prints readable lines with KEYTALLY_LOG_FORMAT=pretty, through to its last line', async () => {
    const proc = await startKeytally({ KEYTALLY_DATA_DIR: tempDir(), KEYTALLY_LOG_FORMAT: 'pretty' });
    expect(await proc.stop('SIGTERM')).toBe(0);
    const lines = proc.output().trim().split('\n');
    expect(lines.find((line) => line.startsWith('{'))).toBeUndefined();
    expect(lines.some((line) => /\] INFO: keytally is ready$/.test(line))).toBe(true);
    expect(lines.at(-1)).toMatch(/\] INFO: stopped$/);
  });

  it('a real process writing to a pipe prints JSON lines by default, and pretty ones with --log-format', async () => {
    const json = await startKeytally({ KEYTALLY_DATA_DIR: tempDir() });
    expect(await json.stop('SIGTERM')).toBe(0);
    const parsed = json
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string });
    expect(parsed.map((line) => line.msg)).toContain('keytally is ready');

    const port = await freePort();
    const flagged = runKeytally(['serve', '--log-format', 'pretty'], {
      KEYTALLY_DATA_DIR: tempDir(),
      KEYTALLY_PORT: String(port),
    });
    await waitForOutput(flagged, /INFO: keytally is ready/);
    expect(await flagged.stop('SIGTERM')).toBe(0);
    expect(flagged.output()).not.toMatch(/^\{/m);
  });

  it('exits 2 naming KEYTALLY_LOG_FORMAT when it is neither json nor pretty', async () => {
    const proc = runKeytally(['serve'], { KEYTALLY_DATA_DIR: tempDir(), KEYTALLY_LOG_FORMAT: 'yaml' });
    expect(await proc.exited).toBe(2);
    expect(proc.output().trim()).toBe(
      'keytally: invalid configuration: KEYTALLY_LOG_FORMAT: must be json or pretty (got "yaml")',
    );
  });
});

async function waitForOutput(proc: KeytallyProcess, pattern: RegExp, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(proc.output())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
