import { useQuery } from '@tanstack/react-query';
import { api } from '../api.ts';
import { queryKeys } from './keys.ts';

/**
 * How many calendar months of usage exist (from the smallest sources answer, `top=1` by month), so
 * the All period can draw a short history in days instead of one or two fat month bars.
 */
export function useHistoryMonths(admin: boolean, enabled: boolean) {
  return useQuery({
    queryKey: queryKeys.historySpan(admin),
    queryFn: async () => {
      const range = { period: 'all' } as const;
      const answer = admin
        ? await api.adminSources(range, undefined, { top: 1 })
        : await api.sources(range, { top: 1 });
      return answer.bucket_labels?.length ?? 0;
    },
    enabled,
    staleTime: 60_000,
  });
}
