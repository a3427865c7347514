import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, type SourcesView, type UsageRange } from '../api.ts';
import { queryKeys, USAGE_REFRESH_MS } from './keys.ts';

/** Usage by source and key: the admin endpoint (every user, legacy included) or the caller's own. */
export function useUsageSources(range: UsageRange, admin: boolean, userId?: string, view?: SourcesView) {
  return useQuery({
    queryKey: queryKeys.sources(range, admin, userId, view),
    queryFn: () => (admin ? api.adminSources(range, userId, view) : api.sources(range, view)),
    placeholderData: keepPreviousData,
    refetchInterval: USAGE_REFRESH_MS,
  });
}
