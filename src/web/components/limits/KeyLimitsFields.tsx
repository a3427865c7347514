import { BUDGET_WINDOWS, type KeyLimits } from '../../../shared/limits.ts';

/** The form state of a key's limits: text inputs, '' = no limit. */
export interface KeyLimitsDraft {
  rpm: string;
  tpm: string;
  max_parallel: string;
  token_budget: string;
  usd_budget: string;
  budget_window: KeyLimits['budget_window'];
  soft_threshold: string;
}

export const EMPTY_DRAFT: KeyLimitsDraft = {
  rpm: '',
  tpm: '',
  max_parallel: '',
  token_budget: '',
  usd_budget: '',
  budget_window: 'month',
  soft_threshold: '',
};

const text = (value: number | null) => (value === null ? '' : String(value));
const numberOrNull = (value: string) => (value.trim() === '' ? null : Number(value));

export function draftOf(limits: KeyLimits): KeyLimitsDraft {
  return {
    rpm: text(limits.rpm),
    tpm: text(limits.tpm),
    max_parallel: text(limits.max_parallel),
    token_budget: text(limits.token_budget),
    usd_budget: text(limits.usd_budget),
    budget_window: limits.budget_window,
    soft_threshold: text(limits.soft_threshold),
  };
}

/** The request body; the server validates and names the field when a value is refused. */
export function limitsOf(draft: KeyLimitsDraft): KeyLimits {
  return {
    rpm: numberOrNull(draft.rpm),
    tpm: numberOrNull(draft.tpm),
    max_parallel: numberOrNull(draft.max_parallel),
    token_budget: numberOrNull(draft.token_budget),
    usd_budget: numberOrNull(draft.usd_budget),
    budget_window: draft.budget_window,
    soft_threshold: numberOrNull(draft.soft_threshold),
  };
}

export function isEmptyDraft(draft: KeyLimitsDraft): boolean {
  return !draft.rpm && !draft.tpm && !draft.max_parallel && !draft.token_budget && !draft.usd_budget;
}

const WINDOW_LABELS: Record<KeyLimits['budget_window'], string> = {
  '1h': 'per hour',
  '1d': 'per day (UTC)',
  '7d': 'per week (from Monday, UTC)',
  '30d': 'per 30 days',
  month: 'per calendar month (UTC)',
};

const NUMBER_FIELDS = [
  ['rpm', 'Requests per minute'],
  ['tpm', 'Tokens per minute'],
  ['max_parallel', 'Parallel requests'],
  ['token_budget', 'Token budget'],
  ['usd_budget', 'Budget (USD)'],
] as const;

/** Inputs for a key's limits (create-key form and the edit dialog). */
export function KeyLimitsFields({
  idPrefix,
  draft,
  onChange,
}: {
  idPrefix: string;
  draft: KeyLimitsDraft;
  onChange: (draft: KeyLimitsDraft) => void;
}) {
  return (
    <div className="row" style={{ flexWrap: 'wrap', gap: 12, alignItems: 'flex-end' }}>
      {NUMBER_FIELDS.map(([field, label]) => (
        <div className="field" key={field} style={{ flex: '1 1 140px' }}>
          <label htmlFor={`${idPrefix}-${field}`}>{label}</label>
          <input
            id={`${idPrefix}-${field}`}
            className="input"
            type="number"
            min={field === 'usd_budget' ? 0.01 : 1}
            step={field === 'usd_budget' ? 0.01 : 1}
            placeholder="Unlimited"
            value={draft[field]}
            onChange={(e) => onChange({ ...draft, [field]: e.target.value })}
          />
        </div>
      ))}
      <div className="field" style={{ flex: '1 1 180px' }}>
        <label htmlFor={`${idPrefix}-window`}>Budget window</label>
        <select
          id={`${idPrefix}-window`}
          className="select"
          value={draft.budget_window}
          onChange={(e) =>
            onChange({ ...draft, budget_window: e.target.value as KeyLimits['budget_window'] })
          }
        >
          {BUDGET_WINDOWS.map((window) => (
            <option key={window} value={window}>
              {WINDOW_LABELS[window]}
            </option>
          ))}
        </select>
      </div>
      <div className="field" style={{ flex: '1 1 120px' }}>
        <label htmlFor={`${idPrefix}-soft`}>Warn at (% of budget)</label>
        <input
          id={`${idPrefix}-soft`}
          className="input"
          type="number"
          min={1}
          max={99}
          placeholder="e.g. 80"
          value={draft.soft_threshold}
          onChange={(e) => onChange({ ...draft, soft_threshold: e.target.value })}
        />
      </div>
    </div>
  );
}
