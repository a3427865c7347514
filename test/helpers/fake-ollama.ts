import type http from 'node:http';
import {
  FAKE_EMBEDDING_TOKENS,
  FAKE_MODELS,
  FAKE_PROMPT_TOKENS,
  FAKE_REPLY_WORDS,
  type FakeUpstreamOptions,
  type ReceivedRequest,
  sendJson,
  writeEvents,
} from './fake-upstream.ts';

/**
 * The fake upstream's Ollama native API (below `/api`): /api/chat and /api/generate (NDJSON
 * streams unless `stream: false`, every line split across two writes; the final `done` object
 * carries `prompt_eval_count` / `eval_count`), /api/embed, /api/embeddings, /api/tags, /api/show,
 * /api/version. The model prefixes of fake-upstream.ts apply (`fake-429`, `fake-500`,
 * `fake-no-usage`, `fake-break`, `fake-long`); errors are Ollama's `{"error": "..."}`.
 */

export const FAKE_OLLAMA_VERSION = '0.9.9-fake';
const MODIFIED_AT = '2025-11-28T00:00:00Z';

export async function respondOllama(
  received: ReceivedRequest,
  res: http.ServerResponse,
  options: FakeUpstreamOptions,
): Promise<void> {
  if (received.method === 'GET' && received.path === '/api/version') {
    sendJson(res, 200, { version: FAKE_OLLAMA_VERSION });
    return;
  }
  if (received.method === 'GET' && received.path === '/api/tags') {
    const models = options.models ?? FAKE_MODELS;
    sendJson(res, 200, {
      models: models.map((name) => ({
        name,
        model: name,
        modified_at: MODIFIED_AT,
        size: 1234,
        digest: `sha256-${name}`,
        details: { format: 'gguf', family: 'fake', parameter_size: '1B', quantization_level: 'Q4_0' },
      })),
    });
    return;
  }
  const body = received.body ?? {};
  const model = typeof body.model === 'string' ? body.model : '';
  if (received.method !== 'POST') {
    sendJson(res, 404, { error: `no route ${received.path}` });
    return;
  }
  if (model.startsWith('fake-429')) {
    sendJson(res, 429, { error: 'rate limit reached for fake-429' });
    return;
  }
  if (model.startsWith('fake-500')) {
    sendJson(res, 500, { error: 'the fake upstream had an internal error' });
    return;
  }
  const noUsage = model.startsWith('fake-no-usage');
  const words = model.startsWith('fake-long')
    ? Array.from({ length: 200 }, (_, i) => ` w${i}`)
    : FAKE_REPLY_WORDS;
  const counts = noUsage ? {} : { prompt_eval_count: FAKE_PROMPT_TOKENS, eval_count: words.length };
  switch (received.path) {
    case '/api/chat':
    case '/api/generate': {
      const chat = received.path === '/api/chat';
      const piece = (text: string) =>
        chat ? { message: { role: 'assistant', content: text } } : { response: text };
      const done = {
        model,
        created_at: MODIFIED_AT,
        ...piece(''),
        done: true,
        done_reason: 'stop',
        total_duration: 1000,
        ...counts,
      };
      if (body.stream === false) {
        sendJson(res, 200, { ...done, ...piece(words.join('')) });
        return;
      }
      const lines = words.map(
        (word) => `${JSON.stringify({ model, created_at: MODIFIED_AT, ...piece(word), done: false })}\n`,
      );
      lines.push(`${JSON.stringify(done)}\n`);
      await writeEvents(res, lines, {
        contentType: 'application/x-ndjson',
        delayMs: model.startsWith('fake-long') ? 20 : 0,
        breakAfter: model.startsWith('fake-break') ? 2 : undefined,
        whole: options.wholeEvents === true,
      });
      return;
    }
    case '/api/embed': {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      sendJson(res, 200, {
        model,
        embeddings: inputs.map(() => [0.1, 0.2, 0.3]),
        ...(noUsage ? {} : { prompt_eval_count: FAKE_EMBEDDING_TOKENS }),
      });
      return;
    }
    case '/api/embeddings':
      sendJson(res, 200, { embedding: [0.1, 0.2, 0.3] });
      return;
    case '/api/show':
      sendJson(res, 200, {
        modelfile: `FROM ${model}`,
        parameters: '',
        template: '{{ .Prompt }}',
        details: { format: 'gguf', family: 'fake', parameter_size: '1B', quantization_level: 'Q4_0' },
        model_info: {},
        capabilities: ['completion'],
      });
      return;
  }
  sendJson(res, 404, { error: `no route ${received.path}` });
}
