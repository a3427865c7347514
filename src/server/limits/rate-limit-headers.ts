import type { FastifyReply } from 'fastify';
import type { Meter } from './meter.ts';

/**
 * OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}: of each unit, the meter with the
 * least room left; reset = when what it counts now has left its window. Kept as their six texts
 * (null: no meter counts that unit) and set one by one as the answer goes out: no header object
 * per request, and nothing set twice when the upstream's own headers had to be overwritten.
 */
export class RateLimitHeaders {
  constructor(
    readonly limitRequests: string | null,
    readonly remainingRequests: string | null,
    readonly resetRequests: string | null,
    readonly limitTokens: string | null,
    readonly remainingTokens: string | null,
    readonly resetTokens: string | null,
  ) {}

  /** The headers of `meters` at `now`; null when no meter counts requests or tokens (a USD budget alone). */
  static of(meters: readonly Meter[], now: number): RateLimitHeaders | null {
    let requests: Meter | null = null;
    let requestsRoom = Number.POSITIVE_INFINITY;
    let tokens: Meter | null = null;
    let tokensRoom = Number.POSITIVE_INFINITY;
    for (let i = 0; i < meters.length; i++) {
      const meter = meters[i] as Meter;
      if (meter.unit === 'nanos' || meter.max === Number.POSITIVE_INFINITY) continue;
      const left = meter.max - meter.used(now) - meter.reserved;
      if (meter.unit === 'requests') {
        if (left < requestsRoom) {
          requestsRoom = left;
          requests = meter;
        }
      } else if (left < tokensRoom) {
        tokensRoom = left;
        tokens = meter;
      }
    }
    if (!requests && !tokens) return null;
    return new RateLimitHeaders(
      requests ? requests.maxText : null,
      requests ? remainingText(requestsRoom) : null,
      requests ? resetTextOf(requests, now) : null,
      tokens ? tokens.maxText : null,
      tokens ? remainingText(tokensRoom) : null,
      tokens ? resetTextOf(tokens, now) : null,
    );
  }

  write(reply: FastifyReply): void {
    if (this.limitRequests !== null) {
      reply.header('x-ratelimit-limit-requests', this.limitRequests);
      reply.header('x-ratelimit-remaining-requests', this.remainingRequests);
      reply.header('x-ratelimit-reset-requests', this.resetRequests);
    }
    if (this.limitTokens !== null) {
      reply.header('x-ratelimit-limit-tokens', this.limitTokens);
      reply.header('x-ratelimit-remaining-tokens', this.remainingTokens);
      reply.header('x-ratelimit-reset-tokens', this.resetTokens);
    }
  }
}

const BILLION = 1_000_000_000;

/**
 * The room left as header text. Past 2^30, V8 turns a number into text by its float path (~150 ns,
 * measured); a large budget's room goes as two small integers instead (~70 ns).
 */
export function remainingText(room: number): string {
  if (room <= 0) return '0';
  const whole = Math.floor(room);
  if (whole < BILLION) return String(whole);
  const high = Math.floor(whole / BILLION);
  const low = String(whole - high * BILLION);
  return `${high}${'000000000'.slice(low.length)}${low}`;
}

function resetTextOf(meter: Meter, now: number): string {
  const resetAt = meter.counter ? meter.counter.clearsAt(now) : now;
  return meter.resetText(resetAt > now ? resetAt - now : 0);
}
