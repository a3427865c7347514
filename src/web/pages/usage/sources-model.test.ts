import { describe, expect, it } from 'vitest';
import type { SourcesResponse } from '../../../shared/usage.ts';
import {
  buildChart,
  buildRows,
  filterRows,
  OTHER_ID,
  selectionLabel,
  seriesMatches,
  sortRows,
} from './sources-model.ts';

const bucket = (over: Partial<SourcesResponse['buckets'][number]>) => ({
  bucket: '2026-11-28',
  prompt_tokens: 0,
  completion_tokens: 0,
  total_tokens: 0,
  request_count: 1,
  cost: 0,
  unpriced_requests: 0,
  ...over,
});

function payload(keys: number): SourcesResponse {
  const buckets = Array.from({ length: keys }, (_, i) =>
    bucket({
      source: 'apikey',
      api_key_id: `k${i}`,
      api_key_name: `key-${i}`,
      user_id: 'u1',
      user_name: 'Ann',
      total_tokens: 100 * (i + 1),
    }),
  );
  buckets.push(bucket({ source: 'web', user_id: 'u1', user_name: 'Ann', total_tokens: 5 }));
  buckets.push(bucket({ source: 'web', user_id: 'u2', user_name: 'Ben', total_tokens: 7 }));
  return {
    buckets,
    totals: {
      by_source: {
        apikey: { tokens: 1, requests: 1, cost: 0, unpriced_requests: 0 },
        web: { tokens: 12, requests: 2, cost: 0, unpriced_requests: 0 },
      },
      by_key: buckets
        .filter((b) => b.source === 'apikey')
        .map((b) => ({
          api_key_id: b.api_key_id ?? '',
          api_key_name: b.api_key_name ?? '',
          user_id: 'u1',
          user_name: 'Ann',
          tokens: b.total_tokens,
          requests: 1,
          cost: 0,
          unpriced_requests: 0,
          last_used: `2026-11-28T0${b.total_tokens % 9}:00:00Z`,
          key_prefix: `kt-${b.api_key_id}`,
          revoked: b.api_key_id === 'k0',
        })),
      by_user_source: [
        {
          source: 'web',
          user_id: 'u2',
          user_name: 'Ben',
          tokens: 7,
          requests: 1,
          cost: 0,
          unpriced_requests: 0,
        },
        {
          source: 'web',
          user_id: 'u1',
          user_name: 'Ann',
          tokens: 5,
          requests: 1,
          cost: 0,
          unpriced_requests: 0,
        },
      ],
      grand_total: { tokens: 1, requests: 1, cost: 0, unpriced_requests: 0 },
    },
    truncated: false,
    window: { from: null, to: null, granularity: 'day' },
  };
}

describe('sources model', () => {
  it('keeps the top 7 identities and rolls the rest into Other, counting identities', () => {
    const chart = buildChart(payload(9), true);
    expect(chart.series.map((s) => s.id)).toEqual(['k8', 'k7', 'k6', 'k5', 'k4', 'k3', 'k2', OTHER_ID]);
    const other = chart.series.at(-1);
    expect(other?.label).toBe('Other (4)');
    expect(other?.members.map((m) => m.id).sort()).toEqual(['k0', 'k1', 'web:u1', 'web:u2']);
    expect(chart.values.get('2026-11-28')?.get(OTHER_ID)).toBe(100 + 200 + 5 + 7);
  });

  it('admin web traffic is one series per user; the self view merges it into one', () => {
    expect(buildChart(payload(1), true).series.map((s) => s.id)).toEqual(['k0', 'web:u2', 'web:u1']);
    expect(buildChart(payload(1), false).series.map((s) => s.id)).toEqual(['k0', 'web']);
  });

  it('selection matches a series by id, by source class, and Other by any member', () => {
    const chart = buildChart(payload(9), true);
    const other = chart.series.find((s) => s.id === OTHER_ID)!;
    const top = chart.series[0]!;
    expect(seriesMatches('apikey', top)).toBe(true);
    expect(seriesMatches('web', top)).toBe(false);
    expect(seriesMatches('web', other)).toBe(true);
    expect(seriesMatches('web:u2', other)).toBe(true);
    expect(seriesMatches('k8', other)).toBe(false);
    expect(seriesMatches(null, other)).toBe(true);
  });

  it('rows carry the server’s prefix and revoked flag, and per-user Web UI rows for admins', () => {
    const rows = buildRows(payload(2), true);
    expect(rows.find((r) => r.id === 'k0')).toMatchObject({
      prefix: 'kt-k0',
      revoked: true,
      userName: 'Ann',
    });
    expect(rows.find((r) => r.id === 'k1')?.revoked).toBe(false);
    expect(rows.filter((r) => r.kind === 'web').map((r) => r.id)).toEqual(['web:u2', 'web:u1']);
    expect(
      buildRows(payload(2), false)
        .filter((r) => r.kind === 'web')
        .map((r) => r.id),
    ).toEqual(['web']);
    expect(selectionLabel('web:u2', rows, [])).toBe('Web UI · Ben');
    expect(selectionLabel('apikey', rows, [])).toBe('API keys');
  });

  it('search matches name, prefix and user; sorts order as labelled', () => {
    const rows = buildRows(payload(3), true);
    expect(filterRows(rows, '  BEN ').map((r) => r.id)).toEqual(['web:u2']);
    expect(filterRows(rows, 'kt-k1').map((r) => r.id)).toEqual(['k1']);
    expect(sortRows(rows, 'tokens').map((r) => r.tokens)).toEqual([300, 200, 100, 7, 5]);
    expect(sortRows(rows, 'name').map((r) => r.name)).toEqual([
      'key-0',
      'key-1',
      'key-2',
      'Web UI',
      'Web UI',
    ]);
    const byLast = sortRows(rows, 'last_used');
    expect(byLast.slice(-2).every((r) => r.kind === 'web')).toBe(true);
  });
});
