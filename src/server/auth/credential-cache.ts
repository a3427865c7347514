import type { AuthUser, KeyRights } from './context.ts';
import type { UserAccess } from './permissions.ts';

/**
 * The in-memory side of the hot path (decisions.md section 4): validated API keys and sessions,
 * keyed by their HMAC, so a request on /v1/* reads no database row and writes none.
 *
 * Entries live 10 s at most: LISTEN/NOTIFY (invalidation.ts) evicts changed credentials within
 * milliseconds, and the TTL bounds staleness if a notification is ever lost (listener reconnect).
 * 10 000 entries of ~0.5 KB each keep the cache under ~5 MB; past that the oldest entry goes.
 */
export const CACHE_TTL_MS = 10_000;
export const CACHE_MAX_ENTRIES = 10_000;
/**
 * How long an expired entry may still serve while the database cannot be read (stale-if-error):
 * a 15-minute PostgreSQL outage must not lock out every key that was in use when it began.
 * Invalidations still evict such entries, so a revocation made on this instance holds.
 */
export const CACHE_STALE_IF_ERROR_MS = 15 * 60_000;

export interface CachedApiKey {
  kind: 'apikey';
  keyId: string;
  name: string;
  prefix: string;
  expiresAt: number | null;
  revokedAt: number | null;
  disabledAt: number | null;
  /** Set when the presented secret is one a rotation replaced: it works until then, on every instance. */
  secretExpiresAt: number | null;
  rights: KeyRights;
  user: AuthUser;
  access: UserAccess;
}

export interface CachedSession {
  kind: 'session';
  sessionId: string;
  expiresAt: number;
  rotatedAt: number;
  user: AuthUser;
  access: UserAccess;
}

export type CachedCredential = CachedApiKey | CachedSession;

/** What changed; every instance evicts what matches. */
export type Invalidation =
  | { kind: 'key'; id: string }
  | { kind: 'user'; id: string }
  | { kind: 'session'; id: string }
  | { kind: 'all' };

interface Slot {
  value: CachedCredential;
  until: number;
}

export class CredentialCache {
  private readonly slots = new Map<string, Slot>();
  /** Bumped on every invalidation: a load that started before one must not repopulate the cache. */
  private generation = 0;
  /** Credentials served from a stale entry because the database could not be read (a metric). */
  staleServed = 0;
  /** While the database cannot be read: since when, and how many stale credentials were served. */
  private outage: { since: number; served: number } | null = null;

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly ttlMs = CACHE_TTL_MS,
    private readonly maxEntries = CACHE_MAX_ENTRIES,
  ) {}

  get size(): number {
    return this.slots.size;
  }

  currentGeneration(): number {
    return this.generation;
  }

  get(hash: string): CachedCredential | undefined {
    const slot = this.slots.get(hash);
    if (!slot) return undefined;
    const now = this.clock();
    if (slot.until <= now) {
      if (slot.until + CACHE_STALE_IF_ERROR_MS <= now) this.slots.delete(hash);
      return undefined;
    }
    return slot.value;
  }

  /** The entry even if its TTL has passed (up to CACHE_STALE_IF_ERROR_MS): for database outages only. */
  getStale(hash: string): CachedCredential | undefined {
    const slot = this.slots.get(hash);
    if (!slot || slot.until + CACHE_STALE_IF_ERROR_MS <= this.clock()) return undefined;
    return slot.value;
  }

  /** Stores a loaded credential unless an invalidation happened since `generation` was read. */
  set(hash: string, value: CachedCredential, generation: number): void {
    if (generation !== this.generation) return;
    this.slots.delete(hash);
    if (this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next();
      if (!oldest.done) this.slots.delete(oldest.value);
    }
    this.slots.set(hash, { value, until: this.clock() + this.ttlMs });
  }

  /**
   * Counts a stale entry served during a database outage; true for the first of an outage, so the
   * caller logs once per outage rather than on every request (9,351 lines in 20 s otherwise).
   */
  noteStaleServed(): boolean {
    this.staleServed += 1;
    if (this.outage) {
      this.outage.served += 1;
      return false;
    }
    this.outage = { since: this.clock(), served: 1 };
    return true;
  }

  /** The database answered a credential load: the outage that served stale entries, if one just ended. */
  noteDatabaseAnswered(): { served: number; ms: number } | null {
    const ended = this.outage;
    if (!ended) return null;
    this.outage = null;
    return { served: ended.served, ms: this.clock() - ended.since };
  }

  invalidate(event: Invalidation): void {
    this.generation += 1;
    if (event.kind === 'all') {
      this.slots.clear();
      return;
    }
    for (const [hash, { value }] of this.slots) {
      if (matches(value, event)) this.slots.delete(hash);
    }
  }
}

function matches(value: CachedCredential, event: Exclude<Invalidation, { kind: 'all' }>): boolean {
  switch (event.kind) {
    case 'user':
      return value.user.id === event.id;
    case 'key':
      return value.kind === 'apikey' && value.keyId === event.id;
    case 'session':
      return value.kind === 'session' && value.sessionId === event.id;
  }
}
