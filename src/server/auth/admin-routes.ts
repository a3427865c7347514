import type { FastifyInstance } from 'fastify';
import { ModelAllowlist, PermissionMap, UpdateApiKeyRequest } from '../../shared/access.ts';
import {
  AdminApiKeysQuery,
  AdminPasswordRequest,
  CreateInviteRequest,
  SetRoleRequest,
  SetStatusRequest,
} from '../../shared/auth.ts';
import {
  deleteUser,
  listAllUsers,
  resetUserPassword,
  setUserRole,
  setUserStatus,
} from './accounts.service.ts';
import { listAllApiKeys, revokeApiKeyById, updateApiKeyById } from './api-keys.service.ts';
import type { AuthRuntime } from './auth-runtime.ts';
import { toAdminUserDto } from './dto.ts';
import { requireAdmin } from './guards.ts';
import { createInvite, deleteInvite, listAllInvites } from './invites.service.ts';
import {
  getUserPermissions,
  replaceUserModels,
  replaceUserPermissions,
  storedPermissionsByUser,
} from './permissions.service.ts';
import { effectivePermissions } from './permissions.ts';
import { AUTH_BODY_LIMIT_BYTES } from './protection.ts';
import { parseInput } from './validation.ts';

type WithId = { Params: { id: string } };

/** Admin user, key and invite management (reference section 4; decisions.md section 3). */
export function registerAdminRoutes(app: FastifyInstance, rt: AuthRuntime): void {
  const opts = { bodyLimit: AUTH_BODY_LIMIT_BYTES };

  app.get('/api/auth/admin/users', async (request) => {
    requireAdmin(request);
    const [users, stored] = await Promise.all([listAllUsers(rt), storedPermissionsByUser(rt)]);
    return {
      users: users.map((user) => {
        const own = stored.get(user.id);
        return toAdminUserDto(
          user,
          effectivePermissions(user.role, own?.permissions ?? {}),
          own?.allowedModels ?? { enabled: false },
        );
      }),
    };
  });

  // LocalAI's permissions (localai-reference-control.md 2.6); GET /admin/features is in gateway/access.ts
  app.get<WithId>('/api/auth/admin/users/:id/permissions', async (request) => {
    requireAdmin(request);
    return { user_id: request.params.id, permissions: await getUserPermissions(rt, request.params.id) };
  });

  app.put<WithId>('/api/auth/admin/users/:id/permissions', opts, async (request) => {
    requireAdmin(request);
    const map = parseInput(PermissionMap, request.body);
    await replaceUserPermissions(rt, request.params.id, map);
    return { message: 'permissions updated', user_id: request.params.id, permissions: map };
  });

  app.put<WithId>('/api/auth/admin/users/:id/models', opts, async (request) => {
    requireAdmin(request);
    const allowlist = parseInput(ModelAllowlist, request.body);
    await replaceUserModels(rt, request.params.id, allowlist);
    return { message: 'model allowlist updated', user_id: request.params.id, allowed_models: allowlist };
  });

  app.put<WithId>('/api/auth/admin/users/:id/role', opts, async (request) => {
    const admin = requireAdmin(request);
    const { role } = parseInput(SetRoleRequest, request.body);
    await setUserRole(rt, admin.user.id, request.params.id, role);
    return { message: 'role updated' };
  });

  app.put<WithId>('/api/auth/admin/users/:id/status', opts, async (request) => {
    const admin = requireAdmin(request);
    const { status } = parseInput(SetStatusRequest, request.body);
    await setUserStatus(rt, admin.user.id, request.params.id, status);
    return { message: 'status updated' };
  });

  app.put<WithId>('/api/auth/admin/users/:id/password', opts, async (request) => {
    requireAdmin(request);
    const input = parseInput(AdminPasswordRequest, request.body);
    await resetUserPassword(rt, request.params.id, input.password, input.acknowledge_weak_password === true);
    return { message: 'password reset' };
  });

  app.delete<WithId>('/api/auth/admin/users/:id', opts, async (request) => {
    const admin = requireAdmin(request);
    await deleteUser(rt, admin.user.id, request.params.id);
    return { message: 'user deleted' };
  });

  app.get('/api/auth/admin/api-keys', async (request) => {
    requireAdmin(request);
    const { user_id } = parseInput(AdminApiKeysQuery, request.query ?? {}, 'query');
    return { keys: await listAllApiKeys(rt, user_id || undefined) };
  });

  app.patch<WithId>('/api/auth/admin/api-keys/:id', opts, async (request) => {
    requireAdmin(request);
    const input = parseInput(UpdateApiKeyRequest, request.body);
    return { key: await updateApiKeyById(rt, request.params.id, null, input) };
  });

  app.delete<WithId>('/api/auth/admin/api-keys/:id', opts, async (request) => {
    requireAdmin(request);
    await revokeApiKeyById(rt, request.params.id);
    return { message: 'API key revoked' };
  });

  app.post('/api/auth/admin/invites', opts, async (request, reply) => {
    const admin = requireAdmin(request);
    const input = parseInput(CreateInviteRequest, request.body ?? {});
    return reply.code(201).send(await createInvite(rt, admin.user.id, input.expiresInHours));
  });

  app.get('/api/auth/admin/invites', async (request) => {
    requireAdmin(request);
    return { invites: await listAllInvites(rt) };
  });

  app.delete<WithId>('/api/auth/admin/invites/:id', opts, async (request) => {
    requireAdmin(request);
    await deleteInvite(rt, request.params.id);
    return { message: 'invite deleted' };
  });
}
