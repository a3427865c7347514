import { describe, expect, it } from 'vitest';
import type { SourcesResponse } from '../../../shared/usage.ts';
import { SERIES_PALETTE } from '../../components/chart/colors.ts';
import {
  buildChart,
  buildRows,
  filterRows,
  isTopSeries,
  OTHER_ID,
  selectionLabel,
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
const NO_COST = { cost: 0, unpriced_requests: 0 };

type Bucket = SourcesResponse['buckets'][number];

/** What the server's `top=7` does: the 7 largest series stay, the rest become Other per source. */
function fold(buckets: Bucket[]): Bucket[] {
  const ranked = [...buckets].sort((a, b) => b.total_tokens - a.total_tokens);
  const kept = ranked.slice(0, 7);
  const other = new Map<string, Bucket>();
  for (const b of ranked.slice(7)) {
    const entry = other.get(b.source ?? '') ?? bucket({ source: b.source, other: true, request_count: 0 });
    entry.total_tokens += b.total_tokens;
    entry.request_count += b.request_count;
    other.set(b.source ?? '', entry);
  }
  return [...kept, ...other.values()];
}

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
    buckets: fold(buckets),
    other_series: Math.max(0, buckets.length - 7),
    bucket_labels: ['2026-11-28'],
    source_last_used: { web: '2026-11-28T10:00:00.000Z' },
    totals: {
      by_source: {
        apikey: { tokens: 1, requests: 1, ...NO_COST },
        web: { tokens: 12, requests: 2, ...NO_COST },
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
          ...NO_COST,
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
          ...NO_COST,
          last_used: '2026-11-28T09:00:00.000Z',
          sparkline: [7],
        },
        {
          source: 'web',
          user_id: 'u1',
          user_name: 'Ann',
          tokens: 5,
          requests: 1,
          ...NO_COST,
          sparkline: [5],
        },
      ],
      grand_total: { tokens: 1, requests: 1, ...NO_COST },
    },
    truncated: false,
    window: { from: null, to: null, granularity: 'day' },
  };
}

describe('sources model', () => {
  const labels = ['2026-11-27', '2026-11-28'];

  it('draws the kept series largest first, the folded buckets as Other, over the full axis', () => {
    const chart = buildChart(payload(9), true, labels, null);
    expect(chart.series.map((s) => s.id)).toEqual(['k8', 'k7', 'k6', 'k5', 'k4', 'k3', 'k2', OTHER_ID]);
    const other = chart.series.at(-1);
    expect(other?.label).toBe('Other (4)');
    expect(other?.values).toEqual([0, 100 + 200 + 5 + 7]);
    expect(chart.series[0]?.values).toEqual([0, 900]);
    expect(chart.dimmed.size).toBe(0);
  });

  it('admin web traffic is one series per user; the self view merges it into one', () => {
    expect(buildChart(payload(1), true, labels, null).series.map((s) => s.id)).toEqual([
      'k0',
      'web:u2',
      'web:u1',
    ]);
  });

  it('a series keeps its colour whatever else is shown, and the top eight never share one', () => {
    const few = buildChart(payload(2), true, labels, null);
    const many = buildChart(payload(9), true, labels, null);
    const colorOf = (chart: typeof few, id: string) => chart.series.find((s) => s.id === id)?.color;
    // k1 is the largest in both views: it always gets its own hashed colour.
    expect(colorOf(few, 'k1')).toBe(colorOf(buildChart(payload(2), true, ['2026-11-28'], 'k0'), 'k1'));
    const named = many.series.filter((s) => s.id !== OTHER_ID).map((s) => s.color);
    expect(new Set(named).size).toBe(named.length);
    expect(named.every((color) => (SERIES_PALETTE as readonly string[]).includes(color))).toBe(true);
  });

  it('a selection moves its series to the baseline and fades the rest; a class lights its part of Other', () => {
    const chart = buildChart(payload(9), true, labels, 'k5');
    expect(chart.series[0]?.id).toBe('k5');
    expect([...chart.dimmed].sort()).toEqual(['k2', 'k3', 'k4', 'k6', 'k7', 'k8', OTHER_ID].sort());
    const web = buildChart(payload(9), true, labels, 'web');
    expect(web.series[0]?.id).toBe(`${OTHER_ID}:web`);
    expect(web.series[0]?.values[1]).toBe(12);
    expect(web.dimmed.has(`${OTHER_ID}:web`)).toBe(false);
    expect(web.dimmed.has('k8')).toBe(true);
    const keys = buildChart(payload(9), true, labels, 'apikey');
    expect(keys.series.slice(0, 8).map((s) => s.id)).toContain(`${OTHER_ID}:apikey`);
    expect(keys.dimmed.has(OTHER_ID)).toBe(true);
  });

  it('knows whether a series is in the top 7 (no `keep` request needed) or was kept apart', () => {
    const data = payload(9);
    expect(isTopSeries(data, true, 'k8')).toBe(true);
    expect(isTopSeries(data, true, 'k2')).toBe(true);
    // k1 folded into Other: not a top series.
    expect(isTopSeries(data, true, 'k1')).toBe(false);
    // The answer asked with keep=k1 holds k1 apart, still not among the 7 largest.
    const kept = {
      ...data,
      buckets: [...data.buckets, bucket({ source: 'apikey', api_key_id: 'k1', total_tokens: 200 })],
    };
    expect(isTopSeries(kept, true, 'k1')).toBe(false);
  });

  it('rows carry the server’s prefix, revoked flag, last use and sparkline, and per-user Web UI rows', () => {
    const rows = buildRows(payload(2), true);
    expect(rows.find((r) => r.id === 'k0')).toMatchObject({
      prefix: 'kt-k0',
      revoked: true,
      userName: 'Ann',
    });
    expect(rows.find((r) => r.id === 'k1')?.revoked).toBe(false);
    expect(rows.filter((r) => r.kind === 'web').map((r) => r.id)).toEqual(['web:u2', 'web:u1']);
    expect(rows.find((r) => r.id === 'web:u2')).toMatchObject({
      lastUsed: '2026-11-28T09:00:00.000Z',
      sparkline: [7],
    });
    const own = buildRows(payload(2), false).filter((r) => r.kind === 'web');
    expect(own.map((r) => r.id)).toEqual(['web']);
    expect(own[0]?.lastUsed).toBe('2026-11-28T10:00:00.000Z');
    expect(selectionLabel('web:u2', rows, [])).toBe('Web UI · Ben');
    expect(selectionLabel('apikey', rows, [])).toBe('API keys');
  });

  it('search matches name, prefix and user; every sort goes both ways', () => {
    const rows = buildRows(payload(3), true);
    expect(filterRows(rows, '  BEN ').map((r) => r.id)).toEqual(['web:u2']);
    expect(filterRows(rows, 'ann').length).toBe(4);
    expect(filterRows(rows, 'kt-k1').map((r) => r.id)).toEqual(['k1']);
    expect(sortRows(rows, 'tokens').map((r) => r.tokens)).toEqual([300, 200, 100, 7, 5]);
    expect(sortRows(rows, 'tokens', 'ascending').map((r) => r.tokens)).toEqual([5, 7, 100, 200, 300]);
    expect(sortRows(rows, 'name').map((r) => r.name)).toEqual([
      'key-0',
      'key-1',
      'key-2',
      'Web UI',
      'Web UI',
    ]);
    expect(sortRows(rows, 'name', 'descending').map((r) => r.name)).toEqual([
      'Web UI',
      'Web UI',
      'key-2',
      'key-1',
      'key-0',
    ]);
    expect(sortRows(rows, 'user', 'descending')[0]?.userName).toBe('Ben');
    const byLast = sortRows(rows, 'last_used');
    expect(byLast.at(-1)?.kind).toBe('web');
  });
});
