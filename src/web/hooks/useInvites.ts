import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type Invite } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useInvites() {
  return useQuery({
    queryKey: queryKeys.invites,
    queryFn: api.invites,
    select: (data): Invite[] => data.invites,
  });
}

export function useCreateInvite() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (hours: number) => api.createInvite(hours),
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.invites }),
  });
}

export function useDeleteInvite() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.deleteInvite(id),
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.invites }),
  });
}
