import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { StreamUsage, type StreamUsageTap } from './usage-shapes.ts';

const LF = 10;
const CR = 13;

/**
 * Where the next event of `text` from `from` ends: the index of its terminator, and sets
 * `terminatorEnd` to just past it. SSE: a blank line (`\r?\n\r?\n`); NDJSON (Ollama's native
 * streams): a line end (`\r?\n`). -1 when no whole event is left. indexOf instead of a global regex:
 * no match array per event, and the same leftmost terminator.
 */
function nextTerminator(text: string, from: number, ndjson: boolean, out: { end: number }): number {
  for (let lf = text.indexOf('\n', from); lf !== -1; lf = text.indexOf('\n', lf + 1)) {
    const start = lf > from && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    if (ndjson) {
      out.end = lf + 1;
      return start;
    }
    const next = text.charCodeAt(lf + 1);
    if (next === LF) {
      out.end = lf + 2;
      return start;
    }
    if (next === CR && text.charCodeAt(lf + 2) === LF) {
      out.end = lf + 3;
      return start;
    }
  }
  return -1;
}

export interface SseRelayOptions {
  /** `sse` (the default): `data:` events; `ndjson`: one JSON object a line (Ollama). */
  format?: 'sse' | 'ndjson';
  /** Reads usage from each parsed event; OpenAI/Responses/Anthropic's StreamUsage by default. */
  usage?: StreamUsageTap;
  /** Drop OpenAI usage-only chunks: keytally asked for them, the client did not. */
  stripUsageChunk: boolean;
  /** Runs before the stream's end reaches the client (the usage row is journaled here). */
  onEnd: (usage: StreamUsageTap) => Promise<void>;
  /** Runs once if the stream stops early (client gone, upstream broken): record what was relayed. */
  onAbandon: (usage: StreamUsageTap) => void;
  /** The client can take more: let the upstream send again. */
  resume: () => void;
  /** Stop the upstream request (the client went away). */
  abort: () => void;
}

/**
 * An SSE (or NDJSON) answer on its way to the client, event by event as the upstream sends it, its usage read
 * on the way. The upstream's chunks are fed in (`feed`); only the bytes of an incomplete event are
 * held back (an event split across reads), never the stream. Backpressure: `feed` returns false
 * when the client's buffer is full, the caller pauses the upstream, and `_read` resumes it.
 * A plain Readable fed by undici's handler: no body stream, Transform or pipeline per request.
 */
export class SseRelay extends Readable {
  readonly usage: StreamUsageTap;
  /** Events forwarded to the client so far. */
  eventsForwarded = 0;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  /** The last chunk may have ended inside a character (its bytes went out decoded, not as they came). */
  private charCut = false;
  /** The upstream finished (its usage is being or has been recorded) or the relay was abandoned. */
  private settled = false;
  private readonly ndjson: boolean;
  /** nextTerminator's second answer (one object per relay, not one per event). */
  private readonly terminator = { end: 0 };

  constructor(private readonly options: SseRelayOptions) {
    super();
    this.usage = options.usage ?? new StreamUsage();
    this.ndjson = options.format === 'ndjson';
  }

  /** One upstream chunk; false when the client is behind (pause the upstream until `_read`). */
  feed(chunk: Buffer): boolean {
    const whole = this.pending === '' && !this.charCut;
    const decoded = this.decoder.write(chunk);
    const text = this.pending === '' ? decoded : this.pending + decoded;
    // A last byte above 0x7f may leave part of a character in the decoder (or end one: assume not).
    this.charCut = (chunk[chunk.length - 1] ?? 0) > 0x7f;
    const terminator = this.terminator;
    let start = 0;
    // The forwarded events' text, made only once an event is dropped (otherwise a prefix of `text`).
    let kept: string[] | null = null;
    for (
      let at = nextTerminator(text, 0, this.ndjson, terminator);
      at !== -1;
      at = nextTerminator(text, start, this.ndjson, terminator)
    ) {
      const end = terminator.end;
      if (this.inspect(text.slice(start, at))) {
        this.eventsForwarded += 1;
        kept?.push(text.slice(start, end));
      } else if (kept === null) {
        kept = [text.slice(0, start)];
      }
      start = end;
    }
    this.pending = start === 0 ? text : text.slice(start);
    if (kept !== null) {
      const out = kept.join('');
      return out.length > 0 ? this.push(out) : true;
    }
    if (start === 0) return true;
    // The usual case: the chunk is whole events, all forwarded: send its bytes as they came (unless
    // a character straddles it and its neighbour: the decoded text carries that character once).
    const asCame = whole && start === text.length && !this.charCut;
    return this.push(asCame ? chunk : text.slice(0, start));
  }

  /** The upstream finished: forward the rest, record the usage, then end the stream. */
  finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.pending += this.decoder.end();
    if (this.pending.length > 0 && this.inspect(this.pending)) this.push(this.pending);
    this.pending = '';
    this.options.onEnd(this.usage).then(
      () => this.push(null),
      (error: unknown) => this.destroy(error as Error),
    );
  }

  /** The upstream broke mid-stream. */
  fail(error: Error): void {
    this.destroy(error);
  }

  override _read(): void {
    this.options.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.settled) {
      // Destroyed before its end: the client went away (Fastify destroys its payload) or the
      // upstream broke. Either way the upstream request stops and what was relayed is recorded.
      this.settled = true;
      this.options.abort();
      this.options.onAbandon(this.usage);
    }
    callback(error);
  }

  /** Reads the event's data; returns false when it must not reach the client. */
  private inspect(event: string): boolean {
    const data = this.options.format === 'ndjson' ? event.trim() : sseData(event);
    if (data === '' || data === '[DONE]') return true;
    if (this.usage.scan?.(data)) return true;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return true;
    }
    this.usage.observe(parsed);
    return !(this.options.stripUsageChunk && StreamUsage.isUsageOnlyChunk(parsed));
  }
}

/** The `data:` payload of one SSE event (its data lines joined by newlines). */
function sseData(event: string): string {
  // The usual event: one `data:` line.
  if (event.startsWith('data:') && !event.includes('\n')) {
    return event.charCodeAt(5) === 32 ? event.slice(6) : event.slice(5);
  }
  let data = '';
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === '' ? value : `${data}\n${value}`;
  }
  return data;
}
