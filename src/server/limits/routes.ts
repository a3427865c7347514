import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  KeyLimitPolicy,
  type KeyLimits,
  KeyLimits as KeyLimitsSchema,
  type KeyLimitsStatus,
  QuotaRuleRequest,
  UserLimits,
} from '../../shared/limits.ts';
import { listApiKeys } from '../auth/api-keys.repository.ts';
import { type AuthContext, LEGACY_USER_ID } from '../auth/context.ts';
import { requireAdmin, requireUser } from '../auth/guards.ts';
import { AUTH_BODY_LIMIT_BYTES } from '../auth/protection.ts';
import { findUserById } from '../auth/users.repository.ts';
import { parseInput } from '../auth/validation.ts';
import type { Db } from '../db/connection.ts';
import { AppError, BadRequestError, NotFoundError } from '../errors.ts';
import type { LimitChanges } from './invalidation.ts';
import {
  deleteQuotaRule,
  setPolicyValue,
  upsertKeyLimits,
  upsertQuotaRule,
  upsertUserLimits,
} from './limits.repository.ts';
import type { Limits } from './limits.service.ts';
import { formatQuotaWindow, parseQuotaWindow } from './windows.ts';

type WithId = { Params: { id: string } };
const opts = { bodyLimit: AUTH_BODY_LIMIT_BYTES };
const AdminKeysQuery = z.object({ user_id: z.string().optional() });

export interface LimitRoutesDeps {
  db: Db;
  limits: Limits;
  changes: LimitChanges;
  now: () => number;
}

/**
 * The limits routes: LocalAI's quota routes (localai-reference-control.md section 1.4, with the
 * fixes of section 6 item 1) and keytally's per-key limits and key policy.
 */
export function registerLimitRoutes(app: FastifyInstance, deps: LimitRoutesDeps): void {
  const { db, limits, changes } = deps;

  app.get('/api/auth/quota', async (request) => {
    const auth = requireUser(request);
    return { quotas: limits.quotaStatuses(auth.user.id) };
  });

  app.get<WithId>('/api/auth/admin/users/:id/quotas', async (request) => {
    requireAdmin(request);
    await requireUserRow(db, request.params.id);
    return { quotas: limits.quotaStatuses(request.params.id) };
  });

  app.put<WithId>('/api/auth/admin/users/:id/quotas', opts, async (request) => {
    requireAdmin(request);
    const user = await requireUserRow(db, request.params.id);
    const input = parseInput(QuotaRuleRequest, request.body);
    if (input.window === undefined || input.window === '') throw new BadRequestError('window is required');
    const windowSeconds = parseQuotaWindow(input.window);
    if (windowSeconds === null) {
      throw new BadRequestError(
        `invalid window duration: ${input.window} (at least 1s, e.g. 1m, 1h, 1d, 7d, 30d, 90m)`,
      );
    }
    const row = await upsertQuotaRule(
      db,
      {
        userId: user.id,
        model: input.model,
        maxRequests: input.max_requests ?? null,
        maxTotalTokens: input.max_total_tokens ?? null,
        windowSeconds,
      },
      deps.now(),
    );
    await changes.publish({ kind: 'user', id: user.id });
    const status = limits.quotaStatuses(user.id).find((quota) => quota.id === row.id);
    return {
      message: 'quota rule saved',
      quota: {
        // The reference answers with its raw struct (PascalCase keys, a zero User); kept for scripts.
        ID: row.id,
        UserID: row.user_id,
        Model: row.model,
        MaxRequests: row.max_requests,
        MaxTotalTokens: row.max_total_tokens,
        WindowSeconds: row.window_seconds,
        CreatedAt: new Date(row.created_at).toISOString(),
        UpdatedAt: new Date(row.updated_at).toISOString(),
        User: ZERO_USER,
        ...(status ?? {
          id: row.id,
          model: row.model,
          max_requests: row.max_requests,
          max_total_tokens: row.max_total_tokens,
          window: formatQuotaWindow(row.window_seconds),
        }),
      },
    };
  });

  app.delete<{ Params: { id: string; quota_id: string } }>(
    '/api/auth/admin/users/:id/quotas/:quota_id',
    opts,
    async (request) => {
      requireAdmin(request);
      if (!(await deleteQuotaRule(db, request.params.id, request.params.quota_id))) {
        throw new NotFoundError('quota rule not found');
      }
      await changes.publish({ kind: 'user', id: request.params.id });
      return { message: 'quota rule deleted' };
    },
  );

  // ---- per-user budgets ---------------------------------------------------------------------

  app.get('/api/auth/limits', async (request) => {
    const auth = requireUser(request);
    return limits.userStatus(auth.user.id);
  });

  app.get<WithId>('/api/auth/admin/users/:id/limits', async (request) => {
    requireAdmin(request);
    await requireUserRow(db, request.params.id);
    return limits.userStatus(request.params.id);
  });

  app.put<WithId>('/api/auth/admin/users/:id/limits', opts, async (request) => {
    requireAdmin(request);
    const user = await requireUserRow(db, request.params.id);
    await upsertUserLimits(db, user.id, parseInput(UserLimits, request.body), deps.now());
    await changes.publish({ kind: 'user', id: user.id });
    return { message: 'limits saved', ...(await limits.userStatus(user.id)) };
  });

  // ---- per-key limits -----------------------------------------------------------------------

  app.get('/api/auth/api-keys/limits', async (request) => {
    const auth = requireUser(request);
    if (auth.user.id === LEGACY_USER_ID) return { keys: [] };
    return { keys: await statusesOf(auth.user.id) };
  });

  app.put<WithId>('/api/auth/api-keys/:id/limits', opts, async (request) => {
    const auth = requireAccount(request);
    const key = (await listApiKeys(db, { userId: auth.user.id })).find((row) => row.id === request.params.id);
    if (!key || key.revoked_at !== null) throw new NotFoundError('API key not found');
    const wanted = parseInput(KeyLimitsSchema, request.body);
    const limitsToSet =
      auth.role === 'admin' ? wanted : withinMaximums(wanted, (await limits.policy()).maximums);
    return setKeyLimits(key.id, key.name, key.user_id, limitsToSet);
  });

  app.get('/api/auth/admin/api-keys/limits', async (request) => {
    requireAdmin(request);
    const { user_id } = parseInput(AdminKeysQuery, request.query ?? {}, 'query');
    return { keys: await statusesOf(user_id || undefined) };
  });

  app.put<WithId>('/api/auth/admin/api-keys/:id/limits', opts, async (request) => {
    requireAdmin(request);
    const key = (await listApiKeys(db)).find((row) => row.id === request.params.id);
    if (!key || key.revoked_at !== null) throw new NotFoundError('API key not found');
    return setKeyLimits(key.id, key.name, key.user_id, parseInput(KeyLimitsSchema, request.body));
  });

  app.get('/api/auth/admin/limits/policy', async (request) => {
    requireAdmin(request);
    return limits.policy();
  });

  app.put('/api/auth/admin/limits/policy', opts, async (request) => {
    requireAdmin(request);
    const policy = parseInput(KeyLimitPolicy, request.body);
    await setPolicyValue(db, 'keys', JSON.stringify(policy), deps.now());
    return { message: 'limit policy saved', ...policy };
  });

  async function statusesOf(userId: string | undefined): Promise<KeyLimitsStatus[]> {
    const keys = (await listApiKeys(db, { userId })).filter((row) => row.revoked_at === null);
    return limits.keyStatuses(keys.map((row) => ({ id: row.id, name: row.name, userId: row.user_id })));
  }

  async function setKeyLimits(id: string, name: string, userId: string, value: KeyLimits) {
    await upsertKeyLimits(db, id, value, deps.now());
    await changes.publish({ kind: 'key', id });
    const [status] = await limits.keyStatuses([{ id, name, userId }]);
    return { message: 'limits saved', ...status };
  }
}

/** Limits for a key created by `auth`: the request's (checked), else the admin's defaults. */
export async function limitsForNewKey(
  limits: Limits,
  auth: AuthContext,
  requested: KeyLimits | undefined,
): Promise<KeyLimits | null> {
  const policy = await limits.policy();
  if (requested === undefined) {
    const defaults = policy.defaults;
    const any =
      defaults.rpm ?? defaults.tpm ?? defaults.max_parallel ?? defaults.token_budget ?? defaults.usd_budget;
    if (auth.role === 'admin') return any === null ? null : defaults;
    const capped = capToMaximums(defaults, policy.maximums);
    return (capped.rpm ??
      capped.tpm ??
      capped.max_parallel ??
      capped.token_budget ??
      capped.usd_budget ??
      null)
      ? capped
      : null;
  }
  return auth.role === 'admin' ? requested : withinMaximums(requested, policy.maximums, 'limits.');
}

const CAPPED = ['rpm', 'tpm', 'max_parallel', 'token_budget', 'usd_budget'] as const;

/** A user cannot give a key more than the admin's maximums (nor leave it unlimited under one). */
export function withinMaximums(wanted: KeyLimits, maximums: KeyLimits, prefix = ''): KeyLimits {
  for (const field of CAPPED) {
    const max = maximums[field];
    if (max === null) continue;
    const value = wanted[field];
    if (value === null || value > max) {
      throw new BadRequestError(
        `${prefix}${field}: must be at most ${max} (the administrator's maximum for keys)`,
      );
    }
  }
  return wanted;
}

/** The defaults a user's new key gets, lowered to the maximums (unlimited under a maximum is the maximum). */
export function capToMaximums(defaults: KeyLimits, maximums: KeyLimits): KeyLimits {
  const capped = { ...defaults };
  for (const field of CAPPED) {
    const max = maximums[field];
    const value = capped[field];
    if (max !== null && (value === null || value > max)) capped[field] = max;
  }
  return capped;
}

function requireAccount(request: FastifyRequest): AuthContext {
  const auth = requireUser(request);
  if (auth.user.id === LEGACY_USER_ID) throw new NotFoundError('API key not found');
  return auth;
}

async function requireUserRow(db: Db, id: string) {
  const user = await findUserById(db, id);
  if (!user) throw new AppError(404, 'user not found');
  return user;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';
const ZERO_USER = {
  ID: '',
  Email: '',
  Name: '',
  AvatarURL: '',
  Provider: '',
  Subject: '',
  PasswordHash: '',
  Role: '',
  Status: '',
  CreatedAt: ZERO_TIME,
  UpdatedAt: ZERO_TIME,
};
