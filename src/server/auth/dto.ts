import type { KeyAccessDto, ModelAllowlist, PermissionMap } from '../../shared/access.ts';
import type {
  AdminApiKeyDto,
  AdminUserDto,
  ApiKeyDto,
  InviteDto,
  MeResponse,
  UserSummary,
} from '../../shared/auth.ts';
import type { ApiKeyRow, InviteRow, UserRow } from '../db/schema.ts';
import { parseJsonList, parseScopes, scopeList } from './access.ts';
import type { AuthContext, AuthUser } from './context.ts';
import { effectiveOf } from './permissions.ts';

/** Rows (epoch ms, snake_case) → the DTOs of src/shared/auth.ts (RFC 3339, camelCase). */

// What a Date can hold: ±8.64e15 ms around 1970.
const DATE_MAX_MS = 8.64e15;

/**
 * A stored time past what a Date holds (an expiry written before expiries were bounded) shows as the
 * last representable instant rather than failing the whole list it is in.
 */
export function iso(ms: number): string {
  const bounded = Number.isFinite(ms) ? Math.max(-DATE_MAX_MS, Math.min(DATE_MAX_MS, ms)) : DATE_MAX_MS;
  return new Date(bounded).toISOString();
}

export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

export function toUserSummary(user: AuthUser): UserSummary {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    avatarUrl: user.avatarUrl,
    role: user.role,
    provider: user.provider,
    status: user.status,
  };
}

export function toMe(auth: AuthContext): MeResponse {
  return {
    ...toUserSummary(auth.user),
    role: auth.role,
    permissions: effectiveOf(auth.access),
    source: auth.source,
  };
}

export function toApiKeyDto(row: ApiKeyRow, now: number): ApiKeyDto {
  return {
    id: row.id,
    name: row.name,
    keyPrefix: row.key_prefix,
    role: row.role,
    createdAt: iso(row.created_at),
    lastUsed: isoOrNull(row.last_used),
    ...(row.expires_at === null ? {} : { expiresAt: iso(row.expires_at) }),
    expired: row.expires_at !== null && row.expires_at <= now,
    revoked: row.revoked_at !== null,
    revokedAt: isoOrNull(row.revoked_at),
    ...toKeyAccessDto(row, now),
  };
}

export function toKeyAccessDto(row: ApiKeyRow, now: number): KeyAccessDto {
  const graceEnd = row.previous_expires_at;
  return {
    scopes: scopeList(parseScopes(row.scopes)),
    allowedModels: parseJsonList(row.allowed_models),
    allowedIps: parseJsonList(row.allowed_ips),
    disabled: row.disabled_at !== null,
    disabledAt: isoOrNull(row.disabled_at),
    previousKeyValidUntil:
      row.previous_key_hash !== null && graceEnd !== null && graceEnd > now ? iso(graceEnd) : null,
  };
}

export function toAdminApiKeyDto(row: ApiKeyRow, userName: string, now: number): AdminApiKeyDto {
  return { ...toApiKeyDto(row, now), userId: row.user_id, userName };
}

export function toAdminUserDto(
  row: UserRow,
  permissions: PermissionMap,
  allowedModels: ModelAllowlist,
): AdminUserDto {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    avatarUrl: row.avatar_url,
    role: row.role,
    provider: row.provider,
    status: row.status,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    permissions,
    allowed_models: allowedModels,
  };
}

export function toInviteDto(row: InviteRow): InviteDto {
  return {
    id: row.id,
    codePrefix: row.code_prefix,
    createdBy: row.created_by,
    usedBy: row.used_by,
    usedAt: isoOrNull(row.used_at),
    createdAt: iso(row.created_at),
    expiresAt: iso(row.expires_at),
  };
}
