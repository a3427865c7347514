import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { StreamUsage } from './usage-shapes.ts';

const EVENT_END = /\r?\n\r?\n/;

export interface SseTapOptions {
  /** Drop OpenAI usage-only chunks: keytally asked for them, the client did not. */
  stripUsageChunk: boolean;
  /** Runs before the stream's last bytes reach the client (the usage row is journaled here). */
  onEnd: (usage: StreamUsage) => Promise<void>;
}

/**
 * Forwards an SSE body event by event as the upstream sends it, reading usage on the way. Only the
 * bytes of an incomplete event are held back (an event split across reads), never the stream.
 * Backpressure is the stream pipeline's: when the client reads slowly, `push` returns false, the
 * pipeline stops reading the upstream socket and TCP flow control reaches the upstream.
 */
export class SseTap extends Transform {
  readonly usage = new StreamUsage();
  /** Events forwarded to the client so far. */
  eventsForwarded = 0;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly options: SseTapOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending += this.decoder.write(chunk);
    let out = '';
    for (;;) {
      const match = EVENT_END.exec(this.pending);
      if (!match) break;
      const end = match.index + match[0].length;
      const event = this.pending.slice(0, end);
      this.pending = this.pending.slice(end);
      if (this.inspect(event.slice(0, match.index))) {
        out += event;
        this.eventsForwarded += 1;
      }
    }
    if (out.length > 0) this.push(out);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.pending += this.decoder.end();
    if (this.pending.length > 0 && this.inspect(this.pending)) this.push(this.pending);
    this.pending = '';
    this.options.onEnd(this.usage).then(
      () => callback(),
      (error: unknown) => callback(error as Error),
    );
  }

  /** Reads the event's data; returns false when it must not reach the client. */
  private inspect(event: string): boolean {
    let data = '';
    for (const line of event.split(/\r?\n/)) {
      if (!line.startsWith('data:')) continue;
      const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === '' ? value : `${data}\n${value}`;
    }
    if (data === '' || data === '[DONE]') return true;
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
