import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, type UsageRange } from '../api.ts';
import { queryKeys, USAGE_REFRESH_MS } from './keys.ts';

/** Everyone's usage by (bucket, model, user); admins only. */
export function useAdminUsage(range: UsageRange, enabled: boolean, userId?: string) {
  return useQuery({
    queryKey: queryKeys.adminUsage(range, userId),
    queryFn: () => api.adminUsage(range, userId),
    placeholderData: keepPreviousData,
    refetchInterval: USAGE_REFRESH_MS,
    enabled,
  });
}
