import { useQueryClient } from '@tanstack/react-query';
import { Bot, Send, Square, Trash2 } from 'lucide-react';
import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from 'react';
import { type ChatMessage, type ChatUsage, streamChat } from '../chat-stream.ts';
import { Empty, ErrorState, InlineError, Loading } from '../components/States.tsx';
import { formatCount } from '../format.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useModels } from '../hooks/useModels.ts';
import { useQueryState } from '../router.ts';

interface Turn extends ChatMessage {
  usage?: ChatUsage | null;
  model?: string;
}

// The conversation outlives the page component, so a visit to Usage and back keeps it.
let savedTurns: Turn[] = [];

export function ChatPage() {
  const models = useModels();
  const client = useQueryClient();
  const [query, setQuery] = useQueryState();
  const [turns, setTurns] = useState<Turn[]>(savedTurns);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [streaming, setStreaming] = useState(false);
  const abortRef = useRef<AbortController | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const model = query.get('model') ?? models.data?.[0]?.id ?? '';

  useEffect(() => {
    logRef.current?.scrollTo({ top: logRef.current.scrollHeight });
  });
  useEffect(() => () => abortRef.current?.abort(), []);
  useEffect(() => {
    savedTurns = turns;
  }, [turns]);

  const send = async (event?: FormEvent) => {
    event?.preventDefault();
    const content = draft.trim();
    if (!content || !model || streaming) return;
    const history: ChatMessage[] = [
      ...turns.map(({ role, content: text }) => ({ role, content: text })),
      { role: 'user', content },
    ];
    setTurns([...turns, { role: 'user', content }, { role: 'assistant', content: '', model }]);
    setDraft('');
    setError(null);
    setStreaming(true);
    const controller = new AbortController();
    abortRef.current = controller;
    try {
      const usage = await streamChat(
        model,
        history,
        (text) =>
          setTurns((current) => {
            const last = current[current.length - 1];
            if (!last) return current;
            return [...current.slice(0, -1), { ...last, content: last.content + text }];
          }),
        controller.signal,
      );
      setTurns((current) => {
        const last = current[current.length - 1];
        if (!last) return current;
        return [...current.slice(0, -1), { ...last, usage }];
      });
    } catch (caught) {
      if (!controller.signal.aborted) setError(caught);
    } finally {
      setStreaming(false);
      abortRef.current = null;
      // The usage view refreshes itself; this makes it current right away when the user switches.
      void client.invalidateQueries({ queryKey: queryKeys.usageAll });
      // Again once the recorder has flushed this request (every second by default).
      window.setTimeout(() => void client.invalidateQueries({ queryKey: queryKeys.usageAll }), 1_500);
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      void send();
    }
  };

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Chat</h1>
          <p>Talk to any model behind the gateway. This traffic counts as Web UI usage.</p>
        </div>
        <div className="row">
          <label className="label" htmlFor="chat-model">
            Model
          </label>
          <select
            id="chat-model"
            className="select"
            value={model}
            onChange={(e) => setQuery({ model: e.target.value })}
            disabled={!models.data?.length}
          >
            {models.data?.map((item) => (
              <option key={item.id} value={item.id}>
                {item.id}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="btn btn-ghost"
            onClick={() => setTurns([])}
            disabled={streaming || turns.length === 0}
          >
            <Trash2 size={15} aria-hidden="true" />
            Clear
          </button>
        </div>
      </div>
      {models.isPending ? <Loading label="Loading models…" /> : null}
      {models.isError ? <ErrorState error={models.error} onRetry={() => models.refetch()} /> : null}
      {models.data && models.data.length === 0 ? (
        <Empty title="No models available">Configure an upstream to serve models.</Empty>
      ) : null}
      {models.data && models.data.length > 0 ? (
        <section className="chat card" aria-label="Conversation">
          <div className="chat-log" ref={logRef} aria-live="polite">
            {turns.length === 0 ? (
              <Empty title="Start a conversation" icon={<Bot size={28} aria-hidden="true" />}>
                Messages go to <code>{model}</code>. The tokens each answer used are shown below it.
              </Empty>
            ) : null}
            {turns.map((turn, index) => (
              <div
                // biome-ignore lint/suspicious/noArrayIndexKey: turns are append-only
                key={index}
                className={`msg ${turn.role}`}
                data-testid={turn.role === 'assistant' ? 'assistant-message' : undefined}
              >
                {turn.content || (streaming && index === turns.length - 1 ? '…' : '')}
                {turn.role === 'assistant' && turn.usage ? (
                  <div className="msg-meta" data-testid="chat-usage">
                    {formatCount(turn.usage.total_tokens)} tokens · {formatCount(turn.usage.prompt_tokens)}{' '}
                    prompt + {formatCount(turn.usage.completion_tokens)} completion
                  </div>
                ) : null}
              </div>
            ))}
          </div>
          {error ? <InlineError error={error} /> : null}
          <form className="composer" onSubmit={send}>
            <label htmlFor="chat-input" className="sr-only">
              Message
            </label>
            <textarea
              id="chat-input"
              className="input"
              rows={2}
              placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={onKeyDown}
            />
            {streaming ? (
              <button type="button" className="btn" onClick={() => abortRef.current?.abort()}>
                <Square size={15} aria-hidden="true" />
                Stop
              </button>
            ) : (
              <button type="submit" className="btn btn-primary" disabled={!draft.trim()}>
                <Send size={15} aria-hidden="true" />
                Send
              </button>
            )}
          </form>
        </section>
      ) : null}
    </>
  );
}
