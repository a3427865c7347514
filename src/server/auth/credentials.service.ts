import { hash as digest } from 'node:crypto';
import { ServiceUnavailableError } from '../errors.ts';
import { compileIpMatcher, compileModelMatcher, parseJsonList, parseScopes } from './access.ts';
import { findApiKeyBySecretHash } from './api-keys.repository.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import type { CachedApiKey, CachedSession } from './credential-cache.ts';
import { hashSecret } from './hash.ts';
import { loadUserAccess } from './permissions.service.ts';
import { findSessionById } from './sessions.repository.ts';
import { findUserById } from './users.repository.ts';
import { toAuthUser } from './users.service.ts';

/** Reference section 3.2's messages (plus "revoked": our keys keep a tombstone). */
export const KEY_INVALID = 'invalid API key';
export const KEY_REVOKED = 'API key revoked';
export const KEY_EXPIRED = 'API key expired';
export const KEY_DISABLED = 'API key is disabled; its owner or an admin can enable it again';
export const KEY_ROTATED = 'API key secret was replaced by a rotation and its grace period has ended';
export const ACCOUNT_NOT_ACTIVE = 'user account is not active';
export const SESSION_INVALID = 'invalid or expired session';

export type Validation<T> = { ok: true; value: T } | { ok: false; reason: string };

export const API_KEY_PREFIX = 'kt-';

/**
 * The in-memory cache's name for an API key: SHA-256 of the HMAC secret and the key, one call of
 * `crypto.hash` (a new Hmac object per request cost ~2% of a proxied request's CPU). It never leaves
 * the process; the database keeps the HMAC (hashSecret).
 */
export function apiKeyCacheKey(rt: Pick<AuthRuntime, 'hmacSecret'>, key: string): string {
  return `k:${digest('sha256', `${rt.hmacSecret}\n${key}`, 'base64')}`;
}

/**
 * The cached, currently valid entry of an API key, synchronously; undefined when the key must take
 * validateApiKey's full path (a cache miss, or a refusal that needs its reason).
 */
export function cachedApiKey(rt: AuthRuntime, key: string): CachedApiKey | undefined {
  if (!key.startsWith(API_KEY_PREFIX)) return undefined;
  const entry = rt.cache.get(apiKeyCacheKey(rt, key));
  if (entry?.kind !== 'apikey') return undefined;
  const now = rt.now();
  if (refusal(entry, now) !== undefined) return undefined;
  rt.noteKeyUsed(entry.keyId, now);
  return entry;
}

function refusal(entry: CachedApiKey, now: number): string | undefined {
  if (entry.revokedAt !== null) return KEY_REVOKED;
  if (entry.disabledAt !== null) return KEY_DISABLED;
  if (entry.expiresAt !== null && entry.expiresAt <= now) return KEY_EXPIRED;
  // The end of a rotation's grace needs no notification: every instance compares with its clock.
  if (entry.secretExpiresAt !== null && entry.secretExpiresAt <= now) return KEY_ROTATED;
  if (entry.user.status !== 'active') return ACCOUNT_NOT_ACTIVE;
  return undefined;
}

/**
 * Validates a user API key from the cache (database read on a miss only; never a write).
 * Expiry, revocation and the owner's status are checked on every call, against the clock.
 */
export async function validateApiKey(rt: AuthRuntime, key: string): Promise<Validation<CachedApiKey>> {
  if (!key.startsWith(API_KEY_PREFIX)) return { ok: false, reason: KEY_INVALID };
  const cacheKey = apiKeyCacheKey(rt, key);
  let entry = rt.cache.get(cacheKey);
  if (!entry) {
    const generation = rt.cache.currentGeneration();
    let loaded: CachedApiKey | null;
    try {
      loaded = await loadApiKey(rt, hashSecret(rt.hmacSecret, key));
      noteDatabaseAnswered(rt);
    } catch (error) {
      entry = staleOrUnavailable(rt, cacheKey, error);
      loaded = null;
    }
    if (loaded) {
      entry = loaded;
      rt.cache.set(cacheKey, entry, generation);
    } else if (!entry) {
      return { ok: false, reason: KEY_INVALID };
    }
  }
  if (entry.kind !== 'apikey') return { ok: false, reason: KEY_INVALID };
  const now = rt.now();
  const refused = refusal(entry, now);
  if (refused !== undefined) return { ok: false, reason: refused };
  rt.noteKeyUsed(entry.keyId, now);
  return { ok: true, value: entry };
}

/** Validates a session token (cookie or Bearer); the same cache as keys. */
export async function validateSession(rt: AuthRuntime, token: string): Promise<Validation<CachedSession>> {
  if (!/^[0-9a-f]{64}$/.test(token)) return { ok: false, reason: SESSION_INVALID };
  const id = hashSecret(rt.hmacSecret, token);
  let entry = rt.cache.get(id);
  if (!entry) {
    const generation = rt.cache.currentGeneration();
    let loaded: CachedSession | null;
    try {
      loaded = await loadSession(rt, id);
      noteDatabaseAnswered(rt);
    } catch (error) {
      entry = staleOrUnavailable(rt, id, error);
      loaded = null;
    }
    if (loaded) {
      entry = loaded;
      rt.cache.set(id, entry, generation);
    } else if (!entry) {
      return { ok: false, reason: SESSION_INVALID };
    }
  }
  if (entry.kind !== 'session') return { ok: false, reason: SESSION_INVALID };
  if (entry.expiresAt <= rt.now()) return { ok: false, reason: SESSION_INVALID };
  if (entry.user.status !== 'active') return { ok: false, reason: ACCOUNT_NOT_ACTIVE };
  return { ok: true, value: entry };
}

function noteDatabaseAnswered(rt: AuthRuntime): void {
  const ended = rt.cache.noteDatabaseAnswered();
  if (ended) {
    rt.logger.info(
      { staleServed: ended.served, outageMs: ended.ms },
      'database available again: credentials are checked against it again',
    );
  }
}

async function loadApiKey(rt: AuthRuntime, hash: string): Promise<CachedApiKey | null> {
  const row = await findApiKeyBySecretHash(rt.db, hash);
  if (!row) return null;
  // The previous secret of a rotation: null grace end means it ended at once.
  const previous = row.key_hash !== hash;
  if (previous && row.previous_expires_at === null) return null;
  const user = await findUserById(rt.db, row.user_id);
  if (!user) return null;
  const models = parseJsonList(row.allowed_models);
  const ips = parseJsonList(row.allowed_ips);
  return {
    kind: 'apikey',
    keyId: row.id,
    name: row.name,
    prefix: row.key_prefix,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    disabledAt: row.disabled_at,
    secretExpiresAt: previous ? row.previous_expires_at : null,
    rights: {
      scopes: parseScopes(row.scopes),
      models: models === null ? null : compileModelMatcher(models),
      ips: ips === null ? null : compileIpMatcher(ips),
      expiresAt: row.expires_at,
    },
    user: toAuthUser(user),
    access: await loadUserAccess(rt, user.id, user.role),
  };
}

async function loadSession(rt: AuthRuntime, id: string): Promise<CachedSession | null> {
  const row = await findSessionById(rt.db, id);
  if (!row) return null;
  const user = await findUserById(rt.db, row.user_id);
  if (!user) return null;
  return {
    kind: 'session',
    sessionId: row.id,
    expiresAt: row.expires_at,
    rotatedAt: row.rotated_at || row.created_at,
    user: toAuthUser(user),
    access: await loadUserAccess(rt, user.id, user.role),
  };
}

/**
 * The database could not be read: a credential validated before the outage keeps working from its
 * expired cache entry (usage is journaled meanwhile); an unknown one gets 503, not a misleading 401.
 */
function staleOrUnavailable(rt: AuthRuntime, hash: string, error: unknown): CachedApiKey | CachedSession {
  const stale = rt.cache.getStale(hash);
  if (stale) {
    if (rt.cache.noteStaleServed()) {
      rt.logger.warn(
        { err: error },
        'database unavailable: serving credentials from the stale cache until it answers again (logged once per outage; keytally_stale_credentials_served_total counts them)',
      );
    }
    return stale;
  }
  throw new ServiceUnavailableError(
    'the database is unavailable, so the credential cannot be checked; retry shortly',
    {
      headers: { 'retry-after': '5' },
      cause: error,
    },
  );
}
