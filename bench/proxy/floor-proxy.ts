import { createHmac, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { Pool } from 'undici';

/**
 * The floor (`--floor=on`): the minimal proxy (same Fastify + undici, same body parse and
 * re-serialisation) plus only what keytally's guarantees cannot do without, each the cheapest way
 * this bench's author knows:
 * - the API key checked by its HMAC (no plaintext key in memory), one Map look-up;
 * - a stream asks the upstream for usage (`stream_options.include_usage`);
 * - the answer's usage read before it is answered (a whole answer read whole, then one JSON.parse;
 *   a stream's chunks searched for `"usage":{` as bytes, only that event parsed, each chunk written
 *   straight into the response from undici's handler interface);
 * - one usage row (an id, the key, model, tokens, times) as a JSON line, written to a journal file
 *   before the answer (or a stream's end) leaves, the rows of one event-loop turn in one write(2).
 * No limits, prices, metrics, logs, sources, model routing, error handling beyond a status, nor
 * keytally's sealing of the journal (an fdatasync a second on libuv's pool, off the event loop): what
 * keytally costs above this floor is its own; what the floor costs above the minimal proxy is the
 * price of the guarantees. `floor-proxy.ts <port> <upstream origin> <HMAC secret> <API key>`.
 */
const port = Number(process.argv[2]);
const origin = process.argv[3] ?? '';
const secret = process.argv[4] ?? '';
const keyHash = (key: string) => createHmac('sha256', secret).update(key).digest('hex');
const keys = new Map<string, string>([[keyHash(process.argv[5] ?? ''), randomUUID()]]);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-bench-floor-'));
const fd = fs.openSync(path.join(dir, 'journal.jsonl'), 'a', 0o600);
let queued = '';
let waiting: (() => void)[] = [];
/** Resolves once the line is written (one write(2) per turn of the event loop). */
function journal(line: string): Promise<void> {
  if (queued === '') setImmediate(flush);
  queued += `${line}\n`;
  return new Promise((resolve) => waiting.push(resolve));
}
function flush(): void {
  fs.writeSync(fd, queued);
  queued = '';
  const done = waiting;
  waiting = [];
  for (const resolve of done) resolve();
}

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}
function row(keyId: string, model: string, usage: Usage | undefined, startedAt: number): string {
  return JSON.stringify({
    id: randomUUID(),
    key_id: keyId,
    model,
    prompt_tokens: usage?.prompt_tokens ?? 0,
    completion_tokens: usage?.completion_tokens ?? 0,
    total_tokens: usage?.total_tokens ?? 0,
    started_at: startedAt,
    duration_ms: Date.now() - startedAt,
  });
}

// OpenAI's chunks carry `"usage":null` until the last one (compact JSON, as OpenAI and the fake send).
const USAGE = Buffer.from('"usage":{');
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 30_000 });
const app = Fastify({ logger: false, bodyLimit: 25 * 1024 * 1024 });

app.post('/v1/chat/completions', async (request, reply) => {
  const startedAt = Date.now();
  const authorization = request.headers.authorization ?? '';
  const keyId = keys.get(keyHash(authorization.slice(7)));
  if (!keyId) return reply.code(401).send({ error: 'invalid api key' });
  const body = request.body as Record<string, unknown>;
  const model = String(body.model);
  if (body.stream !== true) {
    const response = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    const usage = (JSON.parse(text) as { usage?: Usage }).usage;
    await journal(row(keyId, model, usage, startedAt));
    reply.code(response.statusCode);
    const type = response.headers['content-type'];
    if (typeof type === 'string') reply.header('content-type', type);
    return reply.send(text);
  }
  reply.hijack();
  const raw = reply.raw;
  let usage: Usage | undefined;
  let corked = false;
  // undici's handler interface straight into the response: no stream object per request.
  pool.dispatch(
    {
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream_options: { include_usage: true } }),
    },
    {
      // Its presence makes undici use this (v7) handler interface, not the legacy one.
      onRequestStart() {},
      onResponseStart(_controller, statusCode, headers) {
        raw.statusCode = statusCode;
        const type = headers['content-type'];
        if (typeof type === 'string') raw.setHeader('content-type', type);
        // The headers leave with the first event, in one write(2) (as keytally's relay does).
        raw.cork();
        corked = true;
      },
      onResponseData(controller, chunk) {
        const at = chunk.indexOf(USAGE);
        if (at !== -1 && usage === undefined) {
          // The event holding it: from its `data: ` to its blank line.
          const start = chunk.lastIndexOf('data: ', at) + 6;
          const end = chunk.indexOf('\n\n', at);
          try {
            usage = (JSON.parse(chunk.toString('utf8', start, end)) as { usage?: Usage }).usage ?? undefined;
          } catch {}
        }
        const taken = raw.write(chunk);
        if (corked) {
          corked = false;
          process.nextTick(() => raw.uncork());
        }
        if (!taken) {
          controller.pause();
          raw.once('drain', () => controller.resume());
        }
      },
      onResponseEnd() {
        if (corked) raw.uncork();
        journal(row(keyId, model, usage, startedAt)).then(() => raw.end());
      },
      onResponseError() {
        raw.destroy();
      },
    },
  );
  return reply;
});

await app.listen({ host: '127.0.0.1', port });
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void app.close().then(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
