import type { FastifyRequest } from 'fastify';
import { TooManyRequestsError } from '../errors.ts';
import { clientAddressOf } from './client-address.ts';

/**
 * Fixed-window limiter per (endpoint, client IP): register, login and token-login allow 5 a
 * minute (reference section 4). In memory: each instance limits on its own, which bounds a
 * password-guessing client to 5 × instances a minute.
 */
/** /api/auth bodies are small JSON documents; 64 KiB is generous and bounds parsing work. */
export const AUTH_BODY_LIMIT_BYTES = 64 * 1024;

export const AUTH_RATE_LIMIT = 5;
export const AUTH_RATE_WINDOW_MS = 60_000;
// Past 10 000 tracked clients, expired windows are swept (then the oldest) before a new one is added.
const MAX_TRACKED = 10_000;

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly clock: () => number,
    private readonly limit = AUTH_RATE_LIMIT,
    private readonly windowMs = AUTH_RATE_WINDOW_MS,
  ) {}

  /** Counts one attempt; throws 429 with Retry-After when over the limit. */
  hit(bucket: string, request: FastifyRequest): void {
    const retryAfterMs = this.count(bucket, request);
    if (retryAfterMs !== undefined) throw new TooManyRequestsError(retryAfterMs / 1000);
  }

  /** Counts one attempt; false when over the limit (for routes that answer with a redirect). */
  allows(bucket: string, request: FastifyRequest): boolean {
    return this.count(bucket, request) === undefined;
  }

  /** Undefined within the limit, else the milliseconds until the window ends. */
  private count(bucket: string, request: FastifyRequest): number | undefined {
    const now = this.clock();
    const key = `${bucket} ${clientAddressOf(request)}`;
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.windowMs) {
      if (!window && this.windows.size >= MAX_TRACKED) this.sweep(now);
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    return window.count > this.limit ? window.start + this.windowMs - now : undefined;
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) {
      if (now - window.start >= this.windowMs) this.windows.delete(key);
    }
    // Still full (a flood from many addresses): forget the oldest windows; memory stays bounded.
    for (const key of this.windows.keys()) {
      if (this.windows.size < MAX_TRACKED) break;
      this.windows.delete(key);
    }
  }
}
