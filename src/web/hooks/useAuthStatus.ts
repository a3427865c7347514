import { useQuery } from '@tanstack/react-query';
import { api } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useAuthStatus() {
  return useQuery({ queryKey: queryKeys.status, queryFn: api.status, staleTime: 30_000 });
}
