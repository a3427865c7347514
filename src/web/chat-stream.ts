/** Streams a chat completion (SSE) from the gateway with the session cookie: the `web` source. */

export interface ChatMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface ChunkShape {
  choices?: { delta?: { content?: string | null } }[];
  usage?: ChatUsage | null;
  error?: { message?: string };
}

export async function streamChat(
  model: string,
  messages: ChatMessage[],
  onDelta: (text: string) => void,
  signal: AbortSignal,
): Promise<ChatUsage | null> {
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!response.ok || !response.body) {
    let message = `request failed (HTTP ${response.status})`;
    try {
      const body = (await response.json()) as ChunkShape;
      if (body.error?.message) message = body.error.message;
    } catch {
      // not JSON: keep the status message
    }
    throw new Error(message);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let usage: ChatUsage | null = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // SSE events end with a blank line; a partial event stays in the buffer until the next read.
    let boundary = buffer.search(/\r?\n\r?\n/);
    while (boundary !== -1) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, '');
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (!data || data === '[DONE]') continue;
        const chunk = JSON.parse(data) as ChunkShape;
        if (chunk.error?.message) throw new Error(chunk.error.message);
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) onDelta(text);
        if (chunk.usage) usage = chunk.usage;
      }
      boundary = buffer.search(/\r?\n\r?\n/);
    }
  }
  return usage;
}
