import { describe, expect, it } from 'vitest';
import { resolveKeyExpiry } from './api-keys.service.ts';
import type { AuthUser } from './context.ts';
import {
  CACHE_STALE_IF_ERROR_MS,
  type CachedApiKey,
  type CachedSession,
  CredentialCache,
} from './credential-cache.ts';
import { channelForSchema } from './invalidation.ts';
import { checkPasswordPolicy, PasswordPolicyError } from './password-policy.ts';
import { FULL_ACCESS } from './permissions.ts';

const user = (id: string): AuthUser => ({
  id,
  email: `${id}@example.test`,
  name: id,
  avatarUrl: '',
  provider: 'local',
  role: 'user',
  status: 'active',
});
const key = (keyId: string, userId: string): CachedApiKey => ({
  kind: 'apikey',
  keyId,
  name: keyId,
  prefix: 'kt-00000000',
  expiresAt: null,
  revokedAt: null,
  disabledAt: null,
  secretExpiresAt: null,
  rights: { scopes: 'all', models: null, ips: null, expiresAt: null },
  user: user(userId),
  access: FULL_ACCESS,
});
const session = (sessionId: string, userId: string): CachedSession => ({
  kind: 'session',
  sessionId,
  expiresAt: Number.MAX_SAFE_INTEGER,
  rotatedAt: 0,
  user: user(userId),
  access: FULL_ACCESS,
});

describe('CredentialCache', () => {
  it('forgets entries after the TTL', () => {
    let now = 1000;
    const cache = new CredentialCache(() => now, 50);
    cache.set('h', key('k', 'u'), cache.currentGeneration());
    expect(cache.get('h')).toBeDefined();
    now += 49;
    expect(cache.get('h')).toBeDefined();
    now += 1;
    expect(cache.get('h')).toBeUndefined();
  });

  it('stays bounded, evicting the oldest entry', () => {
    const cache = new CredentialCache(() => 0, 1000, 3);
    for (const id of ['a', 'b', 'c', 'd']) cache.set(id, key(id, 'u'), cache.currentGeneration());
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('d')).toBeDefined();
  });

  it('evicts by key, by user (keys and sessions) and by session', () => {
    const cache = new CredentialCache(() => 0);
    const g = cache.currentGeneration();
    cache.set('k1', key('key-1', 'alice'), g);
    cache.set('k2', key('key-2', 'bob'), g);
    cache.set('s1', session('sess-1', 'alice'), g);
    cache.set('s2', session('sess-2', 'bob'), g);
    cache.invalidate({ kind: 'key', id: 'key-2' });
    expect(cache.get('k2')).toBeUndefined();
    expect(cache.get('s2')).toBeDefined();
    cache.invalidate({ kind: 'user', id: 'alice' });
    expect(cache.get('k1')).toBeUndefined();
    expect(cache.get('s1')).toBeUndefined();
    cache.invalidate({ kind: 'session', id: 'sess-2' });
    expect(cache.get('s2')).toBeUndefined();
  });

  it('does not store a load that started before an invalidation (no stale resurrection)', () => {
    const cache = new CredentialCache(() => 0);
    const before = cache.currentGeneration();
    cache.invalidate({ kind: 'key', id: 'key-1' });
    cache.set('k1', key('key-1', 'alice'), before);
    expect(cache.get('k1')).toBeUndefined();
  });
});

describe('channelForSchema', () => {
  it('is a safe identifier derived from the schema, at most 63 characters', () => {
    expect(channelForSchema('kt_test_ab12')).toBe('keytally_auth_kt_test_ab12');
    expect(channelForSchema('Weird-Schema"; drop')).toMatch(/^keytally_auth_[a-z0-9_]+$/);
    expect(channelForSchema('x'.repeat(100)).length).toBe(63);
  });
});

describe('resolveKeyExpiry', () => {
  const now = Date.UTC(2026, 0, 1);
  it('prefers expiresAt, then expiresIn, then the default, else none', () => {
    expect(resolveKeyExpiry({ expiresAt: '2026-02-01T00:00:00Z', expiresIn: '1d' }, '90d', now)).toBe(
      Date.UTC(2026, 1, 1),
    );
    expect(resolveKeyExpiry({ expiresAt: '2026-02-01T01:00:00+01:00' }, undefined, now)).toBe(
      Date.UTC(2026, 1, 1),
    );
    expect(resolveKeyExpiry({ expiresIn: '1y' }, '90d', now)).toBe(now + 365 * 86_400_000);
    expect(resolveKeyExpiry({}, '90d', now)).toBe(now + 90 * 86_400_000);
    expect(resolveKeyExpiry({}, undefined, now)).toBeNull();
  });
  it('rejects what is not RFC 3339 or a duration', () => {
    expect(() => resolveKeyExpiry({ expiresAt: '2026-02-01' }, undefined, now)).toThrow(/RFC3339/);
    expect(() => resolveKeyExpiry({ expiresIn: '-5d' }, undefined, now)).toThrow(/expiresIn/);
  });
});

describe('checkPasswordPolicy', () => {
  const code = (password: string, ack = false) => {
    try {
      checkPasswordPolicy(password, ack);
      return 'ok';
    } catch (error) {
      return error instanceof PasswordPolicyError ? error.options.extra?.error_code : 'other';
    }
  };
  it('enforces empty, NUL and 1024 bytes always; 12 characters unless acknowledged', () => {
    expect(code('')).toBe('password_empty');
    expect(code('abc\u0000defghijklmn', true)).toBe('password_nul');
    expect(code('x'.repeat(1025), true)).toBe('password_too_long');
    expect(code('€'.repeat(342), true)).toBe('password_too_long');
    expect(code('x'.repeat(1024))).toBe('ok');
    expect(code('elevenchars')).toBe('password_too_short');
    expect(code('elevenchars', true)).toBe('ok');
    expect(code('twelve chars')).toBe('ok');
  });
});

describe('CredentialCache stale-if-error', () => {
  it('keeps an expired entry for getStale until the stale horizon, and invalidation removes it', () => {
    let now = 0;
    const cache = new CredentialCache(() => now, 50);
    cache.set('h', key('k', 'u'), cache.currentGeneration());
    now = 51;
    expect(cache.get('h')).toBeUndefined();
    expect(cache.getStale('h')).toMatchObject({ keyId: 'k' });
    now = 50 + CACHE_STALE_IF_ERROR_MS;
    expect(cache.getStale('h')).toBeUndefined();

    cache.set('h2', key('k2', 'u'), cache.currentGeneration());
    now += 100;
    cache.invalidate({ kind: 'key', id: 'k2' });
    expect(cache.getStale('h2')).toBeUndefined();
  });
});
