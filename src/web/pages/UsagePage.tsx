import { useIsFetching, useQueryClient } from '@tanstack/react-query';
import { RefreshCw, UserRound, X } from 'lucide-react';
import { type FormEvent, useMemo, useState } from 'react';
import type { SessionUser, UsageRange } from '../api.ts';
import { ErrorState, Loading } from '../components/States.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import type { Measure } from '../format.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useAdminUsage } from '../hooks/useAdminUsage.ts';
import { useAdminUsers } from '../hooks/useAdminUsers.ts';
import { useHistoryMonths } from '../hooks/useHistorySpan.ts';
import { useUsage } from '../hooks/useUsage.ts';
import { useQueryState } from '../router.ts';
import { ModelsTab } from './usage/ModelsTab.tsx';
import { Overview } from './usage/Overview.tsx';
import { SourcesTab } from './usage/SourcesTab.tsx';
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
const SHORT_HISTORY_MONTHS = 3;

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
  const asked = useMemo(() => rangeFromQuery(query), [query]);
  // All with up to three months of history reads better in days (and gives the trend more points).
  const months = useHistoryMonths(admin, asked.period === 'all' && !asked.from);
  const range = useMemo<UsageRange>(
    () =>
      asked.period === 'all' &&
      !asked.from &&
      months.data !== undefined &&
      months.data <= SHORT_HISTORY_MONTHS
        ? { ...asked, granularity: 'day' }
        : asked,
    [asked, months.data],
  );
  const custom = Boolean(range.from);
  const [editingRange, setEditingRange] = useState(false);
  const rawTab = query.get('tab');
  const tab: Tab = rawTab === 'sources' || (rawTab === 'users' && admin) ? rawTab : 'models';
  const userId = admin ? (query.get('user') ?? undefined) : undefined;
  const measure: Measure = query.get('measure') === 'cost' ? 'cost' : 'tokens';

  // The Sources tab has its own cards and chart from the sources answer; the model-level usage is
  // fetched only for the tabs that show it (with 1,000 keys the admin month answer is megabytes).
  const overview = tab !== 'sources';
  const own = useUsage(range, !admin && overview);
  const everyone = useAdminUsage(range, admin && (tab === 'users' || (overview && !userId)));
  const filtered = useAdminUsage(range, admin && overview && Boolean(userId), userId);
  const usage = admin ? (userId ? filtered : everyone) : own;
  const users = useAdminUsers(admin && Boolean(userId));
  const client = useQueryClient();
  const fetching = useIsFetching({ queryKey: queryKeys.usageAll }) > 0;

  const selectedUserName = useMemo(() => {
    if (!userId) return null;
    const bucket = everyone.data?.usage.find((b) => b.user_id === userId);
    return bucket?.user_name || users.data?.find((u) => u.id === userId)?.name || userId;
  }, [everyone.data, users.data, userId]);

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
            tabIndex={tab === value ? 0 : -1}
            onClick={() => setQuery({ tab: value === 'models' ? null : value })}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" aria-label={tab[0]?.toUpperCase() + tab.slice(1)}>
        {overview && usage.isPending ? <Loading label="Loading usage…" /> : null}
        {overview && usage.isError ? (
          <ErrorState error={usage.error} onRetry={() => usage.refetch()} />
        ) : null}
        {overview && usage.data ? <Overview data={usage.data} range={range} measure={measure} /> : null}
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
        From (UTC)
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
        To (UTC)
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
