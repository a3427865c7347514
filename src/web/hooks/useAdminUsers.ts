import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type AdminUser, api, type Role } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useAdminUsers(enabled = true) {
  return useQuery({
    queryKey: queryKeys.adminUsers,
    queryFn: api.adminUsers,
    select: (data) => data.users,
    enabled,
  });
}

export type UserAction =
  | { kind: 'role'; id: string; role: Role }
  | { kind: 'status'; id: string; status: AdminUser['status'] }
  | { kind: 'password'; id: string; password: string }
  | { kind: 'delete'; id: string };

export function useUserAction() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (action: UserAction) => {
      switch (action.kind) {
        case 'role':
          return api.setRole(action.id, action.role);
        case 'status':
          return api.setStatus(action.id, action.status);
        case 'password':
          return api.resetPassword(action.id, action.password);
        case 'delete':
          return api.deleteUser(action.id);
      }
    },
    onSettled: () => client.invalidateQueries({ queryKey: queryKeys.adminUsers }),
  });
}
