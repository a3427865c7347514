import Fastify from 'fastify';
import { Pool } from 'undici';

/**
 * The baseline: the least a Fastify + undici pass-through proxy does (parse the JSON body, forward
 * it, stream the answer back). No auth, no usage, no metrics. `minimal-proxy.ts <port> <upstream origin>`.
 */
const port = Number(process.argv[2]);
const origin = process.argv[3] ?? '';
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 30_000 });
const app = Fastify({ logger: false, bodyLimit: 25 * 1024 * 1024 });

app.post('/v1/chat/completions', async (request, reply) => {
  const response = await pool.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request.body),
  });
  reply.code(response.statusCode);
  const type = response.headers['content-type'];
  if (typeof type === 'string') reply.header('content-type', type);
  return reply.send(response.body);
});

await app.listen({ host: '127.0.0.1', port });
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
