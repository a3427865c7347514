import { useQuery } from '@tanstack/react-query';
import { api } from '../api.ts';
import { queryKeys } from './keys.ts';

/** The single sign-on identities that sign the current user in. */
export function useIdentities() {
  return useQuery({
    queryKey: queryKeys.identities,
    queryFn: api.identities,
    select: (data) => data.identities,
  });
}

/** The sign-in waiting in this browser to be linked to a local account (404 → none). */
export function usePendingLink(enabled: boolean) {
  return useQuery({ queryKey: queryKeys.pendingLink, queryFn: api.pendingLink, enabled, retry: false });
}
