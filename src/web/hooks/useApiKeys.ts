import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { KeyLimitsInput } from '../../shared/limits.ts';
import { api } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useApiKeys() {
  return useQuery({ queryKey: queryKeys.apiKeys, queryFn: api.listKeys, select: (data) => data.keys });
}

export function useCreateApiKey() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({
      name,
      expiresIn,
      limits,
    }: {
      name: string;
      expiresIn?: string;
      limits?: KeyLimitsInput;
    }) => api.createKey(name, expiresIn, limits),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: queryKeys.apiKeys });
      await client.invalidateQueries({ queryKey: queryKeys.keyLimitsAll });
    },
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
