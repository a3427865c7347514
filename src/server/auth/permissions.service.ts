import { ModelAllowlist, PermissionMap } from '../../shared/access.ts';
import type { UserPermissionsRow, UserRow } from '../db/schema.ts';
import { AppError, BadRequestError } from '../errors.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import type { Role } from './context.ts';
import { findUserPermissions, listUserPermissions, upsertUserPermissions } from './permissions.repository.ts';
import {
  effectivePermissions,
  FULL_ACCESS,
  type UserAccess,
  unknownFeatureKeys,
  userAccessOf,
} from './permissions.ts';
import { findUserById } from './users.repository.ts';

const NO_ALLOWLIST: ModelAllowlist = { enabled: false };

function parseStored<T>(
  schema: { safeParse(value: unknown): { success: boolean; data?: T } },
  text: string,
  fallback: T,
): T {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success && parsed.data !== undefined ? parsed.data : fallback;
  } catch {
    return fallback;
  }
}

export interface StoredPermissions {
  permissions: PermissionMap;
  allowedModels: ModelAllowlist;
}

export function storedOf(row: UserPermissionsRow | undefined): StoredPermissions {
  if (!row) return { permissions: {}, allowedModels: NO_ALLOWLIST };
  return {
    permissions: parseStored(PermissionMap, row.permissions, {}),
    allowedModels: parseStored(ModelAllowlist, row.allowed_models, NO_ALLOWLIST),
  };
}

/** One read per credential-cache miss; admins need none. */
export async function loadUserAccess(
  rt: Pick<AuthRuntime, 'db'>,
  userId: string,
  role: Role,
): Promise<UserAccess> {
  if (role === 'admin') return FULL_ACCESS;
  const stored = storedOf(await findUserPermissions(rt.db, userId));
  return userAccessOf(role, stored.permissions, stored.allowedModels);
}

/** Every user's stored permissions, for the admin user list (one query). */
export async function storedPermissionsByUser(rt: AuthRuntime): Promise<Map<string, StoredPermissions>> {
  const rows = await listUserPermissions(rt.db);
  return new Map(rows.map((row) => [row.user_id, storedOf(row)]));
}

/** The reference's 404 for a missing target (flat shape). */
async function requireTarget(rt: AuthRuntime, userId: string): Promise<UserRow> {
  const user = await findUserById(rt.db, userId);
  if (!user) throw new AppError(404, 'user not found');
  return user;
}

export async function getUserPermissions(rt: AuthRuntime, userId: string): Promise<PermissionMap> {
  const user = await requireTarget(rt, userId);
  const stored = storedOf(await findUserPermissions(rt.db, userId));
  return effectivePermissions(user.role, stored.permissions);
}

/** PUT …/permissions: the bare map replaces the stored one; unknown keys are a 400 naming them. */
export async function replaceUserPermissions(
  rt: AuthRuntime,
  userId: string,
  map: PermissionMap,
): Promise<void> {
  await requireTarget(rt, userId);
  const unknown = unknownFeatureKeys(map);
  if (unknown.length > 0) {
    throw new BadRequestError(`unknown feature key${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')}`);
  }
  await upsertUserPermissions(rt.db, userId, { permissions: JSON.stringify(map) }, rt.now());
  await rt.events.publish({ kind: 'user', id: userId });
}

export async function replaceUserModels(
  rt: AuthRuntime,
  userId: string,
  allowlist: ModelAllowlist,
): Promise<void> {
  await requireTarget(rt, userId);
  await upsertUserPermissions(rt.db, userId, { allowed_models: JSON.stringify(allowlist) }, rt.now());
  await rt.events.publish({ kind: 'user', id: userId });
}
