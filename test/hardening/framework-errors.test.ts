import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';

/** Sends raw bytes, returns the status and JSON body of the answer (the server closes or answers). */
function rawRequest(baseUrl: string, bytes: string | Buffer): Promise<{ status: number; body: unknown }> {
  const { port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      const head = /^HTTP\/1\.1 (\d{3})/.exec(received);
      if (!head) return reject(new Error(`no HTTP answer: ${JSON.stringify(received.slice(0, 200))}`));
      const body = received.slice(received.indexOf('\r\n\r\n') + 4);
      resolve({ status: Number(head[1]), body: parseBody(body) });
    });
    socket.write(bytes);
    // Ends the request so a keep-alive answer is followed by a close.
    setImmediate(() => socket.end());
  });
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // A chunked answer: the JSON is between the chunk size line and the terminator.
    const start = text.indexOf('{');
    const end = text.lastIndexOf('}');
    return start === -1 ? text : JSON.parse(text.slice(start, end + 1));
  }
}

// OpenAI's clients read `code` as a string or null.
const openAiShape = { error: { message: expect.any(String), type: expect.any(String), code: null } };
const localAiShape = { error: expect.any(String) };

describe.each(DIALECTS)("the framework's own errors on %s (issue 11, item 11)", (dialect) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ dialect });
    await t.listen();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('431 headers too large: OpenAI shape on /v1, LocalAI shape on /api/auth', async () => {
    const big = 'x'.repeat(20_000);
    const onV1 = await rawRequest(t.baseUrl, `GET /v1/models HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`);
    expect(onV1).toEqual({ status: 431, body: openAiShape });
    const onApi = await rawRequest(
      t.baseUrl,
      `GET /api/auth/me HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`,
    );
    expect(onApi).toEqual({ status: 431, body: localAiShape });
  });

  it('a URL over 16 KB answers 431 in the route shape', async () => {
    const onV1 = await rawRequest(
      t.baseUrl,
      `GET /v1/models?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: a\r\n\r\n`,
    );
    expect(onV1).toEqual({ status: 431, body: openAiShape });
  });

  it('414 for an over-long path parameter, in the LocalAI shape on /api/auth', async () => {
    const answer = await t.app.inject({ method: 'DELETE', url: `/api/auth/api-keys/${'a'.repeat(500)}` });
    expect(answer.statusCode).toBe(414);
    expect(answer.json()).toEqual(localAiShape);
  });

  it('400 for a malformed percent-encoding in a path parameter', async () => {
    const answer = await t.app.inject({ method: 'DELETE', url: '/api/auth/api-keys/%E0%A4%A' });
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toEqual(localAiShape);
  });

  it('400 for a request line that is not HTTP, in the OpenAI shape', async () => {
    const answer = await rawRequest(t.baseUrl, 'GET /v1/models HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(answer).toEqual({ status: 400, body: openAiShape });
  });

  it('413 and bad JSON in each shape', async () => {
    const user = await createUser(t.database.db);
    const { key } = await createApiKey(t.database.db, { userId: user.id });
    const tooLarge = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email: 'a'.repeat(100_000) }),
    });
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.json()).toEqual(localAiShape);
    const badJson = await t.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      payload: '{"model":',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json()).toEqual(openAiShape);
  });
});
