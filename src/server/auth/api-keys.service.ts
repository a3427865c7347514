import { randomUUID } from 'node:crypto';
import {
  DEFAULT_KEY_SCOPES,
  DEFAULT_ROTATION_GRACE_MS,
  type KeyAccessFields,
  MAX_ROTATION_GRACE_MS,
  type RotateApiKeyRequest,
  type UpdateApiKeyRequest,
} from '../../shared/access.ts';
import type {
  AdminApiKeyDto,
  ApiKeyDto,
  CreateApiKeyRequest,
  CreatedApiKeyResponse,
} from '../../shared/auth.ts';
import { MAX_KEY_EXPIRY_MS, parseDurationMs } from '../config.ts';
import type { ApiKeyRow, NewApiKeyRow } from '../db/schema.ts';
import { BadRequestError, ForbiddenError, NotFoundError } from '../errors.ts';
import { checkIpPatterns, cidrWithin, formatScopes } from './access.ts';
import {
  type ApiKeyChanges,
  findApiKeyById,
  insertApiKey,
  listApiKeys,
  revokeApiKey,
  updateApiKey,
} from './api-keys.repository.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import type { KeyRights, Role } from './context.ts';
import { API_KEY_PREFIX } from './credentials.service.ts';
import { iso, toAdminApiKeyDto, toApiKeyDto, toKeyAccessDto } from './dto.ts';
import { hashSecret, randomHex } from './hash.ts';
import { findUserById, listUsers } from './users.repository.ts';

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

/** Who asks for a key or a change: the owner, and the calling key's rights when a key calls. */
export interface KeyActor {
  id: string;
  role: Role;
  /** Set when an API key makes the call: nothing it grants may exceed these. */
  via?: KeyRights;
}

/**
 * The access columns for a new key or a change, checked against what the actor may grant: scopes
 * within the calling key's (and `admin` for admins only), allowlists within the calling key's (an
 * absent list inherits the caller's), so a key never mints or makes a key with more rights.
 */
function accessColumns(actor: KeyActor, input: KeyAccessFields, defaults: boolean): ApiKeyChanges {
  const changes: ApiKeyChanges = {};
  const scopes = input.scopes ?? (defaults ? DEFAULT_KEY_SCOPES : undefined);
  if (scopes !== undefined) {
    if (scopes.includes('admin') && actor.role !== 'admin') {
      throw new ForbiddenError("scopes: 'admin' is only for admins' keys", { code: 'scope_not_allowed' });
    }
    const via = actor.via;
    for (const scope of scopes) {
      if (via && via.scopes !== 'all' && !via.scopes.has(scope)) {
        throw new ForbiddenError(`scopes: cannot grant '${scope}', which the calling API key does not have`, {
          code: 'scope_not_allowed',
        });
      }
    }
    changes.scopes = formatScopes(new Set(scopes));
  }
  if (input.allowedModels !== undefined || (defaults && actor.via?.models)) {
    const requested = input.allowedModels ?? null;
    const limit = actor.via?.models;
    let models = requested;
    if (limit) {
      if (models === null) models = [...limit.patterns];
      models.forEach((pattern, index) => {
        const inside = limit.patterns.includes(pattern) || (!/[*?]/.test(pattern) && limit.allows(pattern));
        if (!inside) {
          throw new ForbiddenError(
            `allowedModels[${index}]: "${pattern}" is outside the calling API key's model allowlist`,
            { code: 'model_not_allowed' },
          );
        }
      });
    }
    changes.allowed_models = models === null ? null : JSON.stringify(models);
  }
  if (input.allowedIps !== undefined || (defaults && actor.via?.ips)) {
    let ips =
      input.allowedIps === undefined || input.allowedIps === null
        ? null
        : checkIpPatterns(input.allowedIps, 'allowedIps');
    const limit = actor.via?.ips;
    if (limit) {
      if (ips === null) ips = [...limit.patterns];
      ips.forEach((cidr, index) => {
        if (!cidrWithin(cidr, limit)) {
          throw new ForbiddenError(
            `allowedIps[${index}]: "${cidr}" is outside the calling API key's IP allowlist`,
            {
              code: 'ip_not_allowed',
            },
          );
        }
      });
    }
    changes.allowed_ips = ips === null ? null : JSON.stringify(ips);
  }
  return changes;
}

export async function createApiKeyFor(
  rt: AuthRuntime,
  owner: KeyActor,
  input: CreateApiKeyRequest,
): Promise<CreatedApiKeyResponse> {
  const now = rt.now();
  let expiresAt = resolveKeyExpiry(input, rt.config.defaultKeyExpiry, now);
  // A key's expiry bounds what it can mint (reference fix list 4).
  const cap = owner.via?.expiresAt ?? null;
  if (cap !== null && (expiresAt === null || expiresAt > cap)) expiresAt = cap;
  const access = accessColumns(owner, input, true);
  const key = generateApiKey();
  const row: NewApiKeyRow = {
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
    ...access,
  };
  await insertApiKey(rt.db, row);
  const stored = await findApiKeyById(rt.db, row.id);
  if (!stored) throw new NotFoundError('API key not found');
  return createdResponse(stored, key, now);
}

function createdResponse(row: ApiKeyRow, key: string, now: number): CreatedApiKeyResponse {
  return {
    key,
    id: row.id,
    name: row.name,
    keyPrefix: row.key_prefix,
    role: row.role,
    createdAt: iso(row.created_at),
    ...(row.expires_at === null ? {} : { expiresAt: iso(row.expires_at) }),
    ...toKeyAccessDto(row, now),
  };
}

/**
 * PATCH: disable or enable, change scopes or allowlists; evicted from every instance's cache.
 * With `ownerId`, another user's key is "not found".
 */
export async function updateApiKeyById(
  rt: AuthRuntime,
  id: string,
  actor: KeyActor | null,
  input: UpdateApiKeyRequest,
  ownerId?: string,
): Promise<ApiKeyDto> {
  const now = rt.now();
  const existing = await findApiKeyById(rt.db, id);
  if (!existing || existing.revoked_at !== null || (ownerId !== undefined && existing.user_id !== ownerId)) {
    throw new NotFoundError('API key not found');
  }
  // An admin's change to someone else's key is checked against the key owner's current role.
  const owner: KeyActor = actor ?? {
    id: existing.user_id,
    role: (await findUserById(rt.db, existing.user_id))?.role ?? 'user',
  };
  const changes = accessColumns(owner, input, false);
  if (input.disabled !== undefined)
    changes.disabled_at = input.disabled ? (existing.disabled_at ?? now) : null;
  if (!(await updateApiKey(rt.db, id, changes, ownerId))) throw new NotFoundError('API key not found');
  await rt.events.publish({ kind: 'key', id });
  const updated = await findApiKeyById(rt.db, id);
  if (!updated) throw new NotFoundError('API key not found');
  return toApiKeyDto(updated, now);
}

/** `grace`: seconds, or a duration (`24h`); 0 ends the old secret at once; default 24 h. */
export function resolveGraceMs(grace: RotateApiKeyRequest['grace']): number {
  if (grace === undefined) return DEFAULT_ROTATION_GRACE_MS;
  let ms: number | null;
  if (typeof grace === 'number') ms = grace * 1000;
  else if (/^0+(ms|s|m|h|d|w|y)?$/.test(grace)) ms = 0;
  else if (/^\d+$/.test(grace)) ms = Number(grace) * 1000;
  else ms = parseDurationMs(grace);
  if (ms === null) throw new BadRequestError('grace: must be seconds or a duration such as 24h, 30m or 0');
  if (ms > MAX_ROTATION_GRACE_MS) throw new BadRequestError('grace: must be at most 30 days');
  return ms;
}

/**
 * A new secret for the same key (same id, name, scopes, limits, usage history). The old secret
 * keeps working until the grace ends; a second rotation during a grace ends the first old secret.
 */
export async function rotateApiKeyById(
  rt: AuthRuntime,
  id: string,
  input: RotateApiKeyRequest,
  ownerId?: string,
): Promise<CreatedApiKeyResponse> {
  const graceMs = resolveGraceMs(input.grace);
  const now = rt.now();
  const existing = await findApiKeyById(rt.db, id);
  if (!existing || existing.revoked_at !== null || (ownerId !== undefined && existing.user_id !== ownerId)) {
    throw new NotFoundError('API key not found');
  }
  const key = generateApiKey();
  const rotated = await updateApiKey(
    rt.db,
    id,
    {
      key_hash: hashSecret(rt.hmacSecret, key),
      key_prefix: key.slice(0, KEY_PREFIX_LENGTH),
      previous_key_hash: graceMs > 0 ? existing.key_hash : null,
      previous_expires_at: graceMs > 0 ? now + graceMs : null,
    },
    ownerId,
  );
  if (!rotated) throw new NotFoundError('API key not found');
  await rt.events.publish({ kind: 'key', id });
  const updated = await findApiKeyById(rt.db, id);
  if (!updated) throw new NotFoundError('API key not found');
  return createdResponse(updated, key, now);
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
