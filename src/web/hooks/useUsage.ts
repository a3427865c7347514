import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, type UsageRange } from '../api.ts';
import { queryKeys, USAGE_REFRESH_MS } from './keys.ts';

/** The caller's own usage by (bucket, model). */
export function useUsage(range: UsageRange, enabled = true) {
  return useQuery({
    queryKey: queryKeys.usage(range),
    queryFn: () => api.usage(range),
    placeholderData: keepPreviousData,
    refetchInterval: USAGE_REFRESH_MS,
    enabled,
  });
}
