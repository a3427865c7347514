import { useIsFetching, useQueryClient } from '@tanstack/react-query';
import { RefreshCw, TrendingUp, UserRound, X } from 'lucide-react';
import { type FormEvent, useMemo, useState } from 'react';
import type { SessionUser, UsageBucket, UsageRange, UsageResponse } from '../api.ts';
import { Link } from '../components/Link.tsx';
import { Empty, ErrorState, Loading } from '../components/States.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { formatCount, formatMeasure, formatTokens, formatUsd, type Measure, sumUsd } from '../format.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useAdminUsage } from '../hooks/useAdminUsage.ts';
import { useUsage } from '../hooks/useUsage.ts';
import { useQueryState } from '../router.ts';
import { axisLabels, project, projectionHorizon } from './usage/buckets.ts';
import { ModelsTab } from './usage/ModelsTab.tsx';
import { SourcesTab } from './usage/SourcesTab.tsx';
import { TokensChart } from './usage/TokensChart.tsx';
import { UsersTab } from './usage/UsersTab.tsx';

const PERIODS = [
  ['day', 'Day'],
  ['week', 'Week'],
  ['month', 'Month'],
  ['all', 'All'],
] as const;
type Period = (typeof PERIODS)[number][0];
type Tab = 'models' | 'users' | 'sources';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** `from`/`to` in the URL are calendar days (UTC); the API gets [from 00:00, day after `to` 00:00). */
export function rangeFromQuery(query: URLSearchParams): UsageRange {
  const raw = query.get('period');
  const period: Period = raw === 'day' || raw === 'week' || raw === 'all' ? raw : 'month';
  const from = query.get('from');
  const to = query.get('to');
  if (from && to && DATE.test(from) && DATE.test(to) && from <= to) {
    const end = new Date(Date.parse(`${to}T00:00:00Z`) + 86_400_000).toISOString().replace('.000Z', 'Z');
    return { period, from: `${from}T00:00:00Z`, to: end };
  }
  return { period };
}

export function UsagePage({ user }: { user: SessionUser }) {
  const admin = user.role === 'admin';
  const [query, setQuery] = useQueryState();
  const range = useMemo(() => rangeFromQuery(query), [query]);
  const custom = Boolean(range.from);
  const [editingRange, setEditingRange] = useState(false);
  const rawTab = query.get('tab');
  const tab: Tab = rawTab === 'sources' || (rawTab === 'users' && admin) ? rawTab : 'models';
  const userId = admin ? (query.get('user') ?? undefined) : undefined;
  const measure: Measure = query.get('measure') === 'cost' ? 'cost' : 'tokens';

  const own = useUsage(range, !admin);
  const everyone = useAdminUsage(range, admin);
  const filtered = useAdminUsage(range, admin && Boolean(userId), userId);
  const usage = admin ? (userId ? filtered : everyone) : own;
  const client = useQueryClient();
  const fetching = useIsFetching({ queryKey: queryKeys.usageAll }) > 0;

  const selectedUserName = useMemo(() => {
    if (!userId) return null;
    const bucket = everyone.data?.usage.find((b) => b.user_id === userId);
    return bucket?.user_name || userId;
  }, [everyone.data, userId]);

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Usage</h1>
          <p>
            {admin
              ? 'Token usage across every user, key and model.'
              : 'Your token usage by model, key and source.'}{' '}
            Times are UTC.
          </p>
        </div>
        <button
          type="button"
          className="btn refresh"
          onClick={() => client.invalidateQueries({ queryKey: queryKeys.usageAll })}
          aria-label="Refresh"
        >
          <RefreshCw size={15} aria-hidden="true" className={fetching ? 'spin' : undefined} />
          <span className="hide-mobile">Refresh</span>
        </button>
      </div>
      <div className="toolbar">
        <fieldset className="segmented" aria-label="Period" style={{ border: 0, margin: 0 }}>
          {PERIODS.map(([value, label]) => (
            <button
              key={value}
              type="button"
              aria-pressed={!custom && range.period === value}
              onClick={() => {
                setEditingRange(false);
                setQuery({ period: value === 'month' ? null : value, from: null, to: null });
              }}
            >
              {label}
            </button>
          ))}
          <button
            type="button"
            aria-pressed={custom || editingRange}
            aria-expanded={custom || editingRange}
            onClick={() => setEditingRange(true)}
          >
            Custom
          </button>
        </fieldset>
        {custom || editingRange ? (
          <CustomRange query={query} onApply={(from, to) => setQuery({ from, to })} active={custom} />
        ) : null}
        <fieldset className="segmented" aria-label="Measure" style={{ border: 0, margin: 0 }}>
          {(
            [
              ['tokens', 'Tokens'],
              ['cost', 'Cost'],
            ] as const
          ).map(([value, label]) => (
            <button
              key={value}
              type="button"
              aria-pressed={measure === value}
              onClick={() => setQuery({ measure: value === 'tokens' ? null : value })}
            >
              {label}
            </button>
          ))}
        </fieldset>
      </div>
      {userId ? (
        <div style={{ marginBottom: 16 }}>
          <span className="chip" data-testid="user-chip">
            <UserRound size={14} aria-hidden="true" />
            <span className="chip-label">User: {selectedUserName}</span>
            <button type="button" aria-label="Clear user filter" onClick={() => setQuery({ user: null })}>
              <X size={14} aria-hidden="true" />
            </button>
          </span>
        </div>
      ) : null}
      {usage.isPending ? <Loading label="Loading usage…" /> : null}
      {usage.isError ? <ErrorState error={usage.error} onRetry={() => usage.refetch()} /> : null}
      {usage.data ? (
        <Overview buckets={usage.data.usage} range={range} window={usage.data.window} measure={measure} />
      ) : null}
      <div className="tabs" role="tablist" onKeyDown={onTabListKeyDown} aria-label="Usage breakdown">
        {(
          [
            ['models', 'Models'],
            ...(admin ? ([['users', 'Users']] as const) : []),
            ['sources', 'Sources'],
          ] as const
        ).map(([value, label]) => (
          <button
            key={value}
            type="button"
            role="tab"
            aria-selected={tab === value}
            onClick={() => setQuery({ tab: value === 'models' ? null : value })}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel">
        {tab === 'models' && usage.data ? (
          <ModelsTab buckets={usage.data.usage} range={range} measure={measure} admin={admin} />
        ) : null}
        {tab === 'users' && admin ? (
          <UsersTab
            query={everyone}
            range={range}
            selectedUserId={userId ?? null}
            onSelect={(id) => setQuery({ user: id })}
            measure={measure}
          />
        ) : null}
        {tab === 'sources' ? (
          <SourcesTab range={range} admin={admin} userId={userId} measure={measure} />
        ) : null}
      </div>
    </>
  );
}

function CustomRange({
  query,
  onApply,
  active,
}: {
  query: URLSearchParams;
  onApply: (from: string, to: string) => void;
  active: boolean;
}) {
  const today = new Date().toISOString().slice(0, 10);
  const [from, setFrom] = useState(
    query.get('from') ?? new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10),
  );
  const [to, setTo] = useState(query.get('to') ?? today);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (from && to && from <= to) onApply(from, to);
  };
  return (
    <form className="range-inputs" onSubmit={submit} aria-label="Custom range">
      <label htmlFor="range-from" className="label">
        From
      </label>
      <input
        id="range-from"
        type="date"
        className="input"
        value={from}
        max={to}
        onChange={(e) => setFrom(e.target.value)}
      />
      <label htmlFor="range-to" className="label">
        To
      </label>
      <input
        id="range-to"
        type="date"
        className="input"
        value={to}
        min={from}
        onChange={(e) => setTo(e.target.value)}
      />
      <button
        type="submit"
        className={active ? 'btn btn-sm btn-primary' : 'btn btn-sm'}
        disabled={!from || !to || from > to}
      >
        Apply
      </button>
    </form>
  );
}

function sumTotals(buckets: UsageBucket[]) {
  const totals = buckets.reduce(
    (acc, b) => ({
      prompt: acc.prompt + b.prompt_tokens,
      completion: acc.completion + b.completion_tokens,
      total: acc.total + b.total_tokens,
      requests: acc.requests + b.request_count,
      unpriced: acc.unpriced + b.unpriced_requests,
    }),
    { prompt: 0, completion: 0, total: 0, requests: 0, unpriced: 0 },
  );
  return { ...totals, cost: sumUsd(buckets.map((b) => b.cost)) };
}

/** Summary cards, the projection and the tokens-over-time chart, from one usage dataset. */
function Overview({
  buckets,
  range,
  window: served,
  measure,
}: {
  buckets: UsageBucket[];
  range: UsageRange;
  window?: UsageResponse['window'];
  measure: Measure;
}) {
  const totals = sumTotals(buckets);
  const { points, projected, horizon, projectedTotal } = useMemo(() => {
    // In cost mode one series: the bucket's cost (carried as `prompt`, with no completion part).
    const byLabel = new Map<string, { prompt: number; completion: number }>();
    for (const b of buckets) {
      const entry = byLabel.get(b.bucket) ?? { prompt: 0, completion: 0 };
      if (measure === 'cost') entry.prompt = sumUsd([entry.prompt, b.cost]);
      else {
        entry.prompt += b.prompt_tokens;
        entry.completion += b.completion_tokens;
      }
      byLabel.set(b.bucket, entry);
    }
    const labels = axisLabels(range, [...byLabel.keys()], Date.now(), served);
    const pts = labels.map((label) => ({ label, prompt: 0, completion: 0, ...byLabel.get(label) }));
    const hz = projectionHorizon(range);
    const values = pts.map((p) => p.prompt + p.completion);
    const ahead = hz ? project(values, hz.buckets) : null;
    return {
      points: pts,
      horizon: hz,
      projected: ahead ? ahead.slice(0, Math.max(1, Math.ceil(pts.length / 4))) : [],
      projectedTotal: ahead ? ahead.reduce((sum, v) => sum + v, 0) : null,
    };
  }, [buckets, range, served, measure]);

  const cards =
    measure === 'cost'
      ? ([
          ['Requests', formatCount(totals.requests), 'requests'],
          ['Priced requests', formatCount(totals.requests - totals.unpriced), 'priced'],
          ['Requests without a price', formatCount(totals.unpriced), 'unpriced'],
          ['Total cost', formatUsd(totals.cost), 'total'],
        ] as const)
      : ([
          ['Requests', formatCount(totals.requests), 'requests'],
          ['Prompt tokens', formatTokens(totals.prompt), 'prompt'],
          ['Completion tokens', formatTokens(totals.completion), 'completion'],
          ['Total tokens', formatTokens(totals.total), 'total'],
        ] as const);

  return (
    <>
      <div className="cards">
        {cards.map(([label, value, id]) => (
          <div key={id} className="card stat" data-testid={`stat-${id}`}>
            <div className="label">{label}</div>
            <div className="value">{value}</div>
          </div>
        ))}
        <div className="card stat stat-wide" data-testid="stat-projection">
          <div className="label row" style={{ gap: 6 }}>
            <TrendingUp size={14} aria-hidden="true" /> Projected {measure === 'cost' ? 'cost ' : ''}
            {horizon ? horizon.label : ''}
          </div>
          {horizon && projectedTotal !== null ? (
            <>
              <div className="value">~{formatMeasure(measure, projectedTotal)}</div>
              <div className="sub">
                {measure === 'cost' ? 'of priced usage' : 'tokens'}, from the trend of this period
              </div>
            </>
          ) : (
            <div className="sub" style={{ marginTop: 8 }}>
              {horizon
                ? 'Not enough data to predict trends'
                : 'Projections are shown for Day / Week / Month / All'}
            </div>
          )}
        </div>
      </div>
      <section className="card" style={{ marginBottom: 24 }} aria-labelledby="tokens-over-time">
        <div className="card-head" style={{ marginBottom: 8 }}>
          <h2 id="tokens-over-time">{measure === 'cost' ? 'Cost over time' : 'Tokens over time'}</h2>
        </div>
        {totals.total === 0 && totals.requests === 0 ? (
          <Empty title="No usage in this period">
            Requests through the gateway show up here. <Link href="/app/chat">Try the chat</Link> or{' '}
            <Link href="/app/account">create an API key</Link>.
          </Empty>
        ) : (
          <TokensChart points={points} projected={projected} measure={measure} />
        )}
      </section>
    </>
  );
}
