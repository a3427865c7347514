import { describe, expect, it } from 'vitest';
import { errorEnvelopeOf } from './errors.ts';

describe('errorEnvelopeOf', () => {
  it.each([
    ['/v1/chat/completions', 'openai'],
    ['/chat/completions', 'openai'],
    ['/v1/models?x=1', 'openai'],
    ['/metrics', 'openai'],
    ['/api/usage-anything', 'openai'],
    ['/v1/messages', 'anthropic'],
    ['/messages?beta=true', 'anthropic'],
    ['/v1/messages/count_tokens', 'anthropic'],
    ['/v1/messages/batches', 'openai'],
    ['/v1/messagesx', 'openai'],
    ['/api/chat', 'ollama'],
    ['/api/tags', 'ollama'],
    ['/api/embeddings', 'ollama'],
    ['/api/auth/login', 'localai'],
    ['/api/auth', 'localai'],
  ])('%s answers in the %s envelope', (url, envelope) => {
    expect(errorEnvelopeOf(url)).toBe(envelope);
  });
});
