import type { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { StreamUsage, type StreamUsageTap } from './usage-shapes.ts';

// How much a relay holds before its response is attached (undici may deliver data with the
// headers, before sendRelay runs) until `feed` says the client is behind.
const EARLY_BYTES_MAX = 16 * 1024;
const LF = 10;
const CR = 13;

/**
 * Where the next event of `text` from `from` ends: returns the index of its terminator and sets
 * `out.end` to just past it. SSE: a blank line (`\r?\n\r?\n`); NDJSON (Ollama's native
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
  /** The client took what was waiting (its buffer drained): let the upstream send again. */
  resume: () => void;
  /** Stop the upstream request (the client went away). */
  abort: () => void;
}

/**
 * An SSE (or NDJSON) answer on its way to the client, event by event as the upstream sends it, its usage read
 * on the way. The upstream's chunks are fed in (`feed`); only the bytes of an incomplete event are
 * held back (an event split across reads), never the stream. The events are written straight into
 * the response (`attach`): no Readable, pipe or end-of-stream listeners per request (they were ~6 KB
 * of garbage and ~4% of a streamed request's CPU, bench/README.md, session 10). Backpressure: `feed`
 * returns false when the response's buffer is full, the caller pauses the upstream, and the
 * response's `drain` resumes it. The response closing before the relay ends (the client left)
 * abandons it: the upstream is stopped and what was relayed is recorded.
 */
export class SseRelay {
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
  /** The response, once attached; until then what is written waits in `early`. */
  private out: Writable | null = null;
  private early: (string | Buffer)[] = [];
  private earlyBytes = 0;
  /** How the relay ended before it was attached: a clean end, or a cut (see `close`). */
  private ending: 'end' | 'cut' | null = null;
  private readonly onDrain = () => this.options.resume();

  constructor(private readonly options: SseRelayOptions) {
    this.usage = options.usage ?? new StreamUsage();
    this.ndjson = options.format === 'ndjson';
  }

  /**
   * The response the events go to (its headers set, not necessarily sent): what was fed before is
   * written now, and the response closing before the relay ends abandons it.
   */
  attach(out: Writable): void {
    this.out = out;
    out.once('close', () => {
      if (!out.writableFinished) this.abandon();
    });
    let taken = true;
    for (const piece of this.early) taken = out.write(piece);
    const paused = this.earlyBytes >= EARLY_BYTES_MAX;
    this.early = [];
    this.earlyBytes = 0;
    if (this.ending) this.close(this.ending);
    else if (paused) {
      // `feed` said the client was behind before there was a client: resume once it can take more.
      if (taken) this.options.resume();
      else out.once('drain', this.onDrain);
    }
  }

  /** One upstream chunk; false when the client is behind (pause the upstream until `resume`). */
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
      return out.length > 0 ? this.write(out) : true;
    }
    if (start === 0) return true;
    // The usual case: the chunk is whole events, all forwarded: send its bytes as they came (unless
    // a character straddles it and its neighbour: the decoded text carries that character once).
    const asCame = whole && start === text.length && !this.charCut;
    return this.write(asCame ? chunk : text.slice(0, start));
  }

  /** The upstream finished: forward the rest, record the usage, then end the stream. */
  finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.pending += this.decoder.end();
    if (this.pending.length > 0 && this.inspect(this.pending)) this.write(this.pending);
    this.pending = '';
    this.options.onEnd(this.usage).then(
      () => this.close('end'),
      () => this.close('cut'),
    );
  }

  /** The upstream broke mid-stream: what was relayed is recorded and the response is cut. */
  fail(): void {
    this.abandon();
    this.close('cut');
  }

  /** Stops the upstream and records what was relayed, unless the upstream already finished. Once. */
  private abandon(): void {
    if (this.settled) return;
    this.settled = true;
    this.options.abort();
    this.options.onAbandon(this.usage);
  }

  /**
   * Ends the response, or cuts it after an error (the upstream broke, the row could not be
   * journaled: each logged by its caller): the client sees a cut stream, never a clean end.
   */
  private close(how: 'end' | 'cut'): void {
    const out = this.out;
    if (!out) {
      this.ending ??= how;
      return;
    }
    if (how === 'cut') out.destroy();
    else out.end();
  }

  /** Writes to the response (or keeps it for `attach`); false when the client is behind. */
  private write(piece: string | Buffer): boolean {
    const out = this.out;
    if (!out) {
      this.early.push(piece);
      this.earlyBytes += piece.length;
      return this.earlyBytes < EARLY_BYTES_MAX;
    }
    if (out.write(piece)) return true;
    out.once('drain', this.onDrain);
    return false;
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
