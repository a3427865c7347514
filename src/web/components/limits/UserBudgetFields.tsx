import { useEffect, useState } from 'react';
import { BUDGET_WINDOWS, type UserLimits } from '../../../shared/limits.ts';
import type { AdminUser } from '../../api.ts';
import { formatTokens, formatUsd } from '../../format.ts';
import { useSetUserLimits, useUserLimits } from '../../hooks/useLimits.ts';
import { InlineError } from '../States.tsx';
import { useToast } from '../Toast.tsx';

const text = (value: number | null) => (value === null ? '' : String(value));
const numberOrNull = (value: string) => (value.trim() === '' ? null : Number(value));

/** A user's budgets over all their traffic (admin Users page, in the quotas dialog). */
export function UserBudgetFields({ user }: { user: AdminUser }) {
  const status = useUserLimits(user.id);
  const save = useSetUserLimits(user.id);
  const notify = useToast();
  const [tokens, setTokens] = useState('');
  const [usd, setUsd] = useState('');
  const [window, setWindow] = useState<UserLimits['budget_window']>('month');
  const [soft, setSoft] = useState('');
  useEffect(() => {
    const limits = status.data?.limits;
    if (!limits) return;
    setTokens(text(limits.token_budget));
    setUsd(text(limits.usd_budget));
    setWindow(limits.budget_window);
    setSoft(text(limits.soft_threshold));
  }, [status.data]);
  const used = (limit: string) => status.data?.usage.find((u) => u.limit === limit)?.used;
  return (
    <div className="limit-panel">
      <strong>Budgets (all of this user's traffic)</strong>
      <div className="row" style={{ flexWrap: 'wrap', gap: 8, alignItems: 'flex-end' }}>
        <div className="field" style={{ flex: '1 1 120px' }}>
          <label htmlFor="user-token-budget">Token budget</label>
          <input
            id="user-token-budget"
            className="input"
            type="number"
            min={1}
            placeholder="Unlimited"
            value={tokens}
            onChange={(e) => setTokens(e.target.value)}
          />
        </div>
        <div className="field" style={{ flex: '1 1 120px' }}>
          <label htmlFor="user-usd-budget">Budget (USD)</label>
          <input
            id="user-usd-budget"
            className="input"
            type="number"
            min={0.01}
            step={0.01}
            placeholder="Unlimited"
            value={usd}
            onChange={(e) => setUsd(e.target.value)}
          />
        </div>
        <div className="field" style={{ flex: '1 1 120px' }}>
          <label htmlFor="user-budget-window">Budget window</label>
          <select
            id="user-budget-window"
            className="select"
            value={window}
            onChange={(e) => setWindow(e.target.value as UserLimits['budget_window'])}
          >
            {BUDGET_WINDOWS.map((value) => (
              <option key={value} value={value}>
                {value === 'month' ? 'calendar month' : value}
              </option>
            ))}
          </select>
        </div>
        <div className="field" style={{ flex: '1 1 90px' }}>
          <label htmlFor="user-budget-soft">Warn at %</label>
          <input
            id="user-budget-soft"
            className="input"
            type="number"
            min={1}
            max={99}
            value={soft}
            onChange={(e) => setSoft(e.target.value)}
          />
        </div>
        <button
          type="button"
          className="btn"
          disabled={save.isPending}
          onClick={() =>
            save.mutate(
              {
                token_budget: numberOrNull(tokens),
                usd_budget: numberOrNull(usd),
                budget_window: window,
                soft_threshold: numberOrNull(soft),
              },
              { onSuccess: () => notify('Budgets saved') },
            )
          }
        >
          Save budgets
        </button>
      </div>
      {used('token_budget') !== undefined ? (
        <span className="small muted">
          Used this window: {formatTokens(used('token_budget') ?? 0)} tokens
        </span>
      ) : null}
      {used('usd_budget') !== undefined ? (
        <span className="small muted">Spent this window: {formatUsd(used('usd_budget') ?? 0)}</span>
      ) : null}
      <InlineError error={save.error} />
    </div>
  );
}
