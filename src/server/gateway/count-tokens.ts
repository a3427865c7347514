import type { FastifyInstance } from 'fastify';
import { admitModelRequest } from './admission.ts';
import { forwardBody, sendUpstreamAnswer, unwrapFailure } from './passthrough.ts';
import type { ProxyDeps } from './proxy.ts';
import { countTextTokens, estimatePromptTokens } from './tokens.ts';

/** Says whether an `input_tokens` answer came from the upstream or from keytally's tokenizer. */
export const TOKEN_COUNT_ORIGIN_HEADER = 'x-keytally-usage-origin';

/** The tokenizer's count of a Messages request: system and messages text, plus the tool definitions. */
async function estimateInputTokens(body: Record<string, unknown>): Promise<number> {
  const tools = body.tools === undefined ? 0 : await countTextTokens(JSON.stringify(body.tools));
  return (await estimatePromptTokens(body)) + tools;
}

/**
 * POST /v1/messages/count_tokens (Anthropic's `messages.countTokens()`): authenticated and
 * admitted like /v1/messages, forwarded to the model's upstream, never a usage row. An upstream
 * that does not serve it (404/405, e.g. an OpenAI-compatible server) or the demo model: the o200k
 * tokenizer answers, flagged `x-keytally-usage-origin: estimated` (a different tokenizer than
 * Claude's, so a guide, not a bill).
 */
export function registerCountTokens(app: FastifyInstance, deps: ProxyDeps): void {
  for (const path of ['/v1/messages/count_tokens', '/messages/count_tokens']) {
    app.post(path, async (request, reply) => {
      const { upstream, json } = unwrapFailure(() => admitModelRequest(deps, request));
      if (!deps.upstreams.demo) {
        const response = await forwardBody(upstream, request, '/messages/count_tokens', json);
        if (response.statusCode !== 404 && response.statusCode !== 405) {
          if (response.statusCode < 300) reply.header(TOKEN_COUNT_ORIGIN_HEADER, 'provider');
          return sendUpstreamAnswer(reply, response);
        }
      }
      const inputTokens = await estimateInputTokens(json);
      reply.header(TOKEN_COUNT_ORIGIN_HEADER, 'estimated');
      reply.header('x-keytally-overhead-ms', reply.elapsedTime.toFixed(2));
      return { input_tokens: inputTokens };
    });
  }
}
