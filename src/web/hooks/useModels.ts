import { useQuery } from '@tanstack/react-query';
import { api } from '../api.ts';
import { queryKeys } from './keys.ts';

export function useModels() {
  return useQuery({ queryKey: queryKeys.models, queryFn: api.models, select: (data) => data.data });
}
