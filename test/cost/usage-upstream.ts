import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An upstream that answers with exactly the usage a test sets for a model: chat/completions (JSON
 * and SSE, OpenAI's usage shape with details), Responses (JSON) and Anthropic Messages (JSON).
 */
export interface UsageUpstream {
  baseUrl: string;
  /** The `usage` object returned for a model, in the endpoint's own shape. */
  usage: Map<string, Record<string, unknown>>;
  /** The model an answer names for a requested one (default: the requested name). */
  servedAs: Map<string, string>;
  /** Requests received so far. */
  requests(): number;
  close(): Promise<void>;
}

export async function startUsageUpstream(): Promise<UsageUpstream> {
  const usage = new Map<string, Record<string, unknown>>();
  const servedAs = new Map<string, string>();
  let received = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      const requested = String(body.model ?? '');
      const model = servedAs.get(requested) ?? requested;
      const reported = usage.get(requested) ?? { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
      res.setHeader('content-type', body.stream ? 'text/event-stream' : 'application/json');
      if (req.url?.endsWith('/messages')) {
        res.end(
          JSON.stringify({
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model,
            content: [{ type: 'text', text: 'hi' }],
            usage: reported,
          }),
        );
        return;
      }
      if (req.url?.endsWith('/responses')) {
        res.end(JSON.stringify({ id: 'resp_1', object: 'response', model, output: [], usage: reported }));
        return;
      }
      const message = { role: 'assistant', content: 'hi' };
      if (body.stream) {
        res.write(
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: message }] })}\n\n`,
        );
        res.write(
          `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model, choices: [], usage: reported })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
        return;
      }
      res.end(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          model,
          choices: [{ index: 0, message, finish_reason: 'stop' }],
          usage: reported,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    usage,
    servedAs,
    requests: () => received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
