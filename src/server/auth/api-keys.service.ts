import { randomUUID } from 'node:crypto';
import type {
  AdminApiKeyDto,
  ApiKeyDto,
  CreateApiKeyRequest,
  CreatedApiKeyResponse,
} from '../../shared/auth.ts';
import { MAX_KEY_EXPIRY_MS, parseDurationMs } from '../config.ts';
import type { ApiKeyRow } from '../db/schema.ts';
import { BadRequestError, NotFoundError } from '../errors.ts';
import { findApiKeyById, insertApiKey, listApiKeys, revokeApiKey } from './api-keys.repository.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { API_KEY_PREFIX } from './credentials.service.ts';
import { iso, toAdminApiKeyDto, toApiKeyDto } from './dto.ts';
import { hashSecret, randomHex } from './hash.ts';
import { listUsers } from './users.repository.ts';

export const KEY_PREFIX_LENGTH = 12;

// RFC 3339: date, `T`, time, optional fraction, `Z` or an offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** `kt-` + 64 hex characters (32 random bytes). */
export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomHex(32)}`;
}

/**
 * Expiry in the reference's order: `expiresAt` (RFC 3339, past dates accepted), else `expiresIn`,
 * else KEYTALLY_DEFAULT_KEY_EXPIRY, else none. At most MAX_KEY_EXPIRY_MS ahead.
 */
export function resolveKeyExpiry(
  input: { expiresAt?: string; expiresIn?: string },
  defaultExpiry: string | undefined,
  now: number,
): number | null {
  if (input.expiresAt !== undefined && input.expiresAt !== '') {
    const ms = RFC3339.test(input.expiresAt) ? Date.parse(input.expiresAt) : Number.NaN;
    if (Number.isNaN(ms)) throw new BadRequestError('invalid expiresAt format, use RFC3339');
    if (ms - now > MAX_KEY_EXPIRY_MS) throw new BadRequestError('expiresAt: must be at most 10 years ahead');
    return ms;
  }
  if (input.expiresIn !== undefined && input.expiresIn !== '') {
    const ms = parseDurationMs(input.expiresIn);
    if (ms === null) throw new BadRequestError('invalid expiresIn format');
    if (ms > MAX_KEY_EXPIRY_MS) throw new BadRequestError('expiresIn: must be at most 10y');
    return now + ms;
  }
  const fallback = defaultExpiry ? parseDurationMs(defaultExpiry) : null;
  return fallback === null ? null : now + fallback;
}

export async function createApiKeyFor(
  rt: AuthRuntime,
  owner: { id: string; role: string },
  input: CreateApiKeyRequest,
): Promise<CreatedApiKeyResponse> {
  const now = rt.now();
  const expiresAt = resolveKeyExpiry(input, rt.config.defaultKeyExpiry, now);
  const key = generateApiKey();
  const row: ApiKeyRow = {
    id: randomUUID(),
    user_id: owner.id,
    name: input.name,
    key_hash: hashSecret(rt.hmacSecret, key),
    key_prefix: key.slice(0, KEY_PREFIX_LENGTH),
    role: owner.role,
    created_at: now,
    expires_at: expiresAt,
    last_used: null,
    revoked_at: null,
  };
  await insertApiKey(rt.db, row);
  return {
    key,
    id: row.id,
    name: row.name,
    keyPrefix: row.key_prefix,
    role: row.role,
    createdAt: iso(now),
    ...(expiresAt === null ? {} : { expiresAt: iso(expiresAt) }),
  };
}

/** The caller's keys, newest first, revoked ones included with `revokedAt`. */
export async function listOwnApiKeys(rt: AuthRuntime, userId: string): Promise<ApiKeyDto[]> {
  const now = rt.now();
  return (await listApiKeys(rt.db, { userId })).map((row) => toApiKeyDto(row, now));
}

export async function listAllApiKeys(rt: AuthRuntime, userId?: string): Promise<AdminApiKeyDto[]> {
  const now = rt.now();
  const [rows, users] = await Promise.all([listApiKeys(rt.db, { userId }), listUsers(rt.db)]);
  const names = new Map(users.map((user) => [user.id, user.name]));
  return rows.map((row) => toAdminApiKeyDto(row, names.get(row.user_id) ?? '', now));
}

/**
 * Revokes a key (tombstone) and evicts it from every instance's cache. With `ownerId`, another
 * user's key is "not found" (no hint that the id exists).
 */
export async function revokeApiKeyById(rt: AuthRuntime, id: string, ownerId?: string): Promise<void> {
  const revoked = await revokeApiKey(rt.db, id, rt.now(), ownerId);
  if (!revoked) throw new NotFoundError('API key not found');
  await rt.events.publish({ kind: 'key', id });
}

export async function getApiKey(rt: AuthRuntime, id: string): Promise<ApiKeyRow | undefined> {
  return findApiKeyById(rt.db, id);
}
