import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type NewKeyBody, type UpdateApiKeyRequest } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useApiKeys() {
  return useQuery({ queryKey: queryKeys.apiKeys, queryFn: api.listKeys, select: (data) => data.keys });
}

export function useCreateApiKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: NewKeyBody) => api.createKey(body),
    onSuccess: () => client.invalidateQueries({ queryKey: queryKeys.apiKeys }),
  });
}

export function useRevokeApiKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.revokeKey(id),
    onSettled: async () => {
      await client.invalidateQueries({ queryKey: queryKeys.apiKeys });
      await client.invalidateQueries({ queryKey: queryKeys.usageAll });
    },
  });
}

export function useUpdateApiKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, body }: { id: string; body: UpdateApiKeyRequest }) => api.updateKey(id, body),
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.apiKeys }),
  });
}

export function useRotateApiKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, grace }: { id: string; grace: string }) => api.rotateKey(id, grace),
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.apiKeys }),
  });
}
