import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type {
  KeyLimitPolicy,
  KeyLimitsInput,
  QuotaRuleRequest,
  UserLimitsInput,
} from '../../shared/limits.ts';
import { api } from '../api.ts';
import { queryKeys, USAGE_REFRESH_MS } from './keys.ts';

/** Limits and their usage for the caller's keys (`userId` null) or, for admins, another user's. */
export function useKeyLimits(userId: string | null) {
  return useQuery({
    queryKey: queryKeys.keyLimits(userId),
    queryFn: () => (userId ? api.adminKeyLimits(userId) : api.keyLimits()),
    select: (data) => data.keys,
    refetchInterval: USAGE_REFRESH_MS,
  });
}

export function useSetKeyLimits(admin: boolean) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, limits }: { id: string; limits: KeyLimitsInput }) =>
      api.setKeyLimits(id, limits, admin),
    onSuccess: () => client.invalidateQueries({ queryKey: queryKeys.keyLimitsAll }),
  });
}

/** Quota rules with their current usage: the caller's own, or (admin) a user's. */
export function useQuotas(userId: string | null, enabled = true) {
  return useQuery({
    queryKey: queryKeys.quotas(userId),
    queryFn: () => (userId ? api.userQuotas(userId) : api.myQuotas()),
    select: (data) => data.quotas,
    enabled,
    refetchInterval: USAGE_REFRESH_MS,
  });
}

/**
 * Saves a user's rules the way the reference's modal does, with its fix list applied: removed rules
 * (and rules whose model changed) are deleted, then every rule is upserted; 0 stays 0.
 */
export function useSaveQuotas(userId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async ({ remove, save }: { remove: string[]; save: QuotaRuleRequest[] }) => {
      for (const id of remove) await api.deleteQuota(userId, id);
      for (const rule of save) await api.saveQuota(userId, rule);
    },
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.quotas(userId) }),
  });
}

/** A user's own budgets (`userId` null) or, for admins, another user's. */
export function useUserLimits(userId: string | null, enabled = true) {
  return useQuery({
    queryKey: queryKeys.userLimits(userId),
    queryFn: () => (userId ? api.userLimits(userId) : api.myLimits()),
    enabled,
    refetchInterval: USAGE_REFRESH_MS,
  });
}

export function useSetUserLimits(userId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (limits: UserLimitsInput) => api.setUserLimits(userId, limits),
    onSuccess: () => client.invalidateQueries({ queryKey: queryKeys.userLimits(userId) }),
  });
}

export function useLimitPolicy() {
  return useQuery({ queryKey: queryKeys.limitPolicy, queryFn: api.limitPolicy });
}

export function useSetLimitPolicy() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (policy: KeyLimitPolicy) => api.setLimitPolicy(policy),
    onSuccess: () => client.invalidateQueries({ queryKey: queryKeys.limitPolicy }),
  });
}
