import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { PriceDto, PriceInput, PricesResponse } from '../../shared/cost.ts';
import { get, request } from '../api.ts';
import { queryKeys } from './keys.ts';

export const PRICES_KEY = ['admin', 'prices'] as const;

export function usePrices(enabled = true) {
  return useQuery({
    queryKey: PRICES_KEY,
    queryFn: () => get<PricesResponse>('/api/auth/admin/prices'),
    enabled,
  });
}

/** Adds a price version or deletes one; usage views refetch (new traffic is priced at once). */
export function usePriceAction() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (action: { kind: 'add'; price: PriceInput } | { kind: 'delete'; id: string }) =>
      action.kind === 'add'
        ? request<PriceDto>('PUT', '/api/auth/admin/prices', action.price)
        : request<unknown>('DELETE', `/api/auth/admin/prices/${encodeURIComponent(action.id)}`),
    onSettled: async () => {
      await client.invalidateQueries({ queryKey: PRICES_KEY });
      await client.invalidateQueries({ queryKey: queryKeys.usageAll });
    },
  });
}
