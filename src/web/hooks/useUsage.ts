import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, type UsageRange } from '../api.ts';
import { queryKeys } from './keys.ts';

/** The caller's own usage by (bucket, model). */
export function useUsage(range: UsageRange, enabled = true) {
  return useQuery({
    queryKey: queryKeys.usage(range),
    queryFn: () => api.usage(range),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
    enabled,
  });
}
