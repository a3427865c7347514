import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type UpdateApiKeyRequest } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useAdminApiKeys(userId: string) {
  return useQuery({
    queryKey: queryKeys.adminKeys(userId),
    queryFn: () => api.adminKeys(userId),
    select: (data) => data.keys,
  });
}

export function useAdminRevokeApiKey(userId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.adminRevokeKey(id),
    onSettled: async () => {
      await client.invalidateQueries({ queryKey: queryKeys.adminKeys(userId) });
      await client.invalidateQueries({ queryKey: queryKeys.apiKeys });
      await client.invalidateQueries({ queryKey: queryKeys.usageAll });
    },
  });
}

export function useAdminUpdateApiKey(userId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, body }: { id: string; body: UpdateApiKeyRequest }) => api.adminUpdateKey(id, body),
    onSettled: async () => {
      await client.invalidateQueries({ queryKey: queryKeys.adminKeys(userId) });
      await client.invalidateQueries({ queryKey: queryKeys.apiKeys });
    },
  });
}
