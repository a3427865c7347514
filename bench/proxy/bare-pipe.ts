import http from 'node:http';
import { Pool } from 'undici';

/**
 * The streamed baseline: a bare pipe. node:http in, the request body forwarded as the bytes that
 * came, undici's `stream()` writing the upstream's answer straight into the response: no framework,
 * no JSON parse of either side. `bare-pipe.ts <port> <upstream origin>`.
 */
const port = Number(process.argv[2]);
const origin = process.argv[3] ?? '';
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 30_000 });

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    pool
      .stream(
        {
          path: request.url ?? '/',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.concat(chunks),
        },
        ({ statusCode, headers }) => {
          response.statusCode = statusCode;
          const type = headers['content-type'];
          if (typeof type === 'string') response.setHeader('content-type', type);
          return response;
        },
      )
      .catch(() => response.destroy());
  });
});

server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
