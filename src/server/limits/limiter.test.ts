import type { FastifyReply } from 'fastify';
import { describe, expect, it } from 'vitest';
import { KeyLimits } from '../../shared/limits.ts';
import type { LimitEventSink } from './events.ts';
import { type ExactAmounts, LimitExceededError, Limiter, type Ticket } from './limiter.ts';
import { keyMeters, type Meter, type RequestAmounts } from './meter.ts';

/**
 * Admission with a prompt's byte count (an upper bound of its tokens) while a limit has room, and
 * exact counts (the request's and every bounded one in flight) once it does not: the tokenizer stays
 * off the request path, and a limit close to full admits exactly what exact counts would.
 */

const reply = { headers: () => reply, header: () => reply } as unknown as FastifyReply;
const events: LimitEventSink = { emit: () => {}, close: async () => {} } as unknown as LimitEventSink;
const who = { userId: 'u1', keyId: 'k1' };
const owner = { userId: 'u1', keyId: 'k1', keyName: 'key', quotaId: null, model: '' };

// A prompt of 400 bytes that is 100 tokens, asking for 50 completion tokens.
const BOUND: RequestAmounts = { tokens: 400 + 50, nanos: 0 };
const EXACT: RequestAmounts = { tokens: 100 + 50, nanos: 0 };

function setup(limits: Partial<KeyLimits>, loaded = true) {
  let counterLoaded = loaded;
  let loads = 0;
  const limiter = new Limiter({
    now: () => Date.UTC(2026, 11, 1, 12),
    events,
    noteRejected: () => {},
    loadCounter: async () => {
      loads += 1;
      counterLoaded = true;
    },
  });
  const meters = keyMeters(owner, KeyLimits.parse({ budget_window: '1d', ...limits }));
  let exactCalls = 0;
  const exact: ExactAmounts = () => {
    exactCalls += 1;
    return counterLoaded ? EXACT : null;
  };
  return {
    limiter,
    meters,
    budget: meters.find((meter) => meter.unit === 'tokens') as Meter,
    admit: () => limiter.reserve(meters, who.userId, who.keyId, BOUND, reply, exact),
    exactCalls: () => exactCalls,
    loads: () => loads,
  };
}

function admitted(attempt: () => Ticket | Promise<Ticket>): Ticket | null {
  try {
    const ticket = attempt();
    if (ticket instanceof Promise) throw new Error('expected a synchronous admission');
    return ticket;
  } catch (error) {
    if (error instanceof LimitExceededError) return null;
    throw error;
  }
}

describe('Limiter: byte-bound reservations, exact when a limit gets close', () => {
  it('reserves the byte bound and never counts exactly while the budget has room', () => {
    const s = setup({ token_budget: 1_000_000, rpm: 1_000_000 });
    const tickets = Array.from({ length: 100 }, () => admitted(s.admit));
    expect(tickets.every((ticket) => ticket !== null)).toBe(true);
    expect(s.budget.reserved).toBe(100 * BOUND.tokens);
    expect(s.exactCalls()).toBe(0);
    for (const ticket of tickets) ticket?.release();
    expect(s.budget.reserved).toBe(0);
    expect(s.limiter.bounded.size).toBe(0);
  });

  it('64 requests in flight against a 1,000-token budget: exactly floor(1000 / 150) admitted, as with exact counts', () => {
    const s = setup({ token_budget: 1000 });
    const tickets = Array.from({ length: 64 }, () => admitted(s.admit));
    const held = tickets.filter((ticket) => ticket !== null);
    expect(held).toHaveLength(Math.floor(1000 / EXACT.tokens));
    // Everything in flight now holds its exact count, no more.
    expect(s.budget.reserved).toBe(held.length * EXACT.tokens);
    expect(s.exactCalls()).toBeGreaterThan(0);
    // Settling to the real usage frees the rest: one more fits after the first settles at 100 tokens.
    held[0]?.settle({ model: 'm', total_tokens: 100, cost_nanos: null });
    expect(admitted(s.admit)).not.toBeNull();
    expect(admitted(s.admit)).toBeNull();
  });

  it('loads the counter when a limit is close and it is not loaded yet, then admits by the exact count', async () => {
    const s = setup({ token_budget: 600 }, false);
    expect(admitted(s.admit)).not.toBeNull(); // 450 of 600 reserved by its bytes
    const waiting = s.admit();
    expect(waiting).toBeInstanceOf(Promise);
    const ticket = await waiting;
    expect(s.loads()).toBe(1);
    // Both now hold their exact 150.
    expect(s.budget.reserved).toBe(2 * EXACT.tokens);
    ticket.release();
    expect(s.budget.reserved).toBe(EXACT.tokens);
  });

  it('refuses by the exact count when even that does not fit, naming the budget', () => {
    const s = setup({ token_budget: 100 });
    expect(() => s.admit()).toThrow(/token_budget.*this request needs 150/);
    expect(s.budget.reserved).toBe(0);
  });
});

describe('RateLimitHeaders: the room left as of admission', () => {
  const headersAfterOne = (limits: Partial<KeyLimits>) => {
    const s = setup(limits);
    return admitted(s.admit)?.headers ?? null;
  };

  it('names the meter with the least room of each unit, and its room after this request', () => {
    const headers = headersAfterOne({ rpm: 10, max_parallel: 3, tpm: 100_000, token_budget: 5000 });
    expect(headers?.limitRequests).toBe('3');
    expect(headers?.remainingRequests).toBe('2');
    expect(headers?.limitTokens).toBe('5000');
    expect(headers?.remainingTokens).toBe(String(5000 - BOUND.tokens));
    expect(headers?.resetTokens).toMatch(/^(\d+h)?(\d+m)?\d+s$|^\d+ms$/);
  });

  it.each([
    [5_000_000_000_123, '4999999999673'],
    [2_000_000_450, '2000000000'],
    [3_000_000_457, '3000000007'],
    [1_000_000_449, '999999999'],
    [Number.MAX_SAFE_INTEGER, String(Number.MAX_SAFE_INTEGER - BOUND.tokens)],
  ])('writes a budget of %d as its exact room past 2^30: %s', (budget, expected) => {
    expect(headersAfterOne({ token_budget: budget })?.remainingTokens).toBe(expected);
  });

  it('has no request headers without a request limit, and none at all for a USD budget alone', () => {
    const tokensOnly = headersAfterOne({ token_budget: 1000 });
    expect(tokensOnly?.limitRequests).toBeNull();
    expect(tokensOnly?.limitTokens).toBe('1000');
    expect(headersAfterOne({ usd_budget: 5 })).toBeNull();
  });
});
