import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type ModelAllowlist, type PermissionMap } from '../api.ts';
import { queryKeys } from './keys.ts';

/** GET /api/auth/admin/features: the feature catalogue and every served model. */
export function useFeatures(enabled = true) {
  return useQuery({ queryKey: queryKeys.features, queryFn: api.features, enabled });
}

export function useUserPermissions(userId: string | null) {
  return useQuery({
    queryKey: queryKeys.userPermissions(userId ?? ''),
    queryFn: () => api.userPermissions(userId ?? ''),
    enabled: userId !== null,
    select: (data) => data.permissions,
  });
}

/** Saves both parts of the permissions modal: the feature map, then the model allowlist. */
export function useSavePermissions() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: async (input: { id: string; permissions: PermissionMap; models: ModelAllowlist }) => {
      await api.setUserPermissions(input.id, input.permissions);
      await api.setUserModels(input.id, input.models);
    },
    onSettled: async (_data, _error, input) => {
      await client.invalidateQueries({ queryKey: queryKeys.userPermissions(input.id) });
      await client.invalidateQueries({ queryKey: queryKeys.adminUsers });
    },
  });
}
