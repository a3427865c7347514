import { Plus, Trash2 } from 'lucide-react';
import { useEffect, useRef, useState } from 'react';
import { QUOTA_WINDOWS, type QuotaStatus } from '../../../shared/limits.ts';
import type { AdminUser } from '../../api.ts';
import { formatCount, formatTokens } from '../../format.ts';
import { useQuotas, useSaveQuotas } from '../../hooks/useLimits.ts';
import { useModels } from '../../hooks/useModels.ts';
import { InlineError, Loading } from '../States.tsx';
import { useToast } from '../Toast.tsx';
import { UsageBar } from './UsageBar.tsx';
import { UserBudgetFields } from './UserBudgetFields.tsx';

const WINDOW_LABELS: Record<(typeof QUOTA_WINDOWS)[number], string> = {
  '1m': 'per 1 minute',
  '5m': 'per 5 minutes',
  '1h': 'per 1 hour',
  '6h': 'per 6 hours',
  '1d': 'per 1 day',
  '7d': 'per 7 days',
  '30d': 'per 30 days',
};

interface RuleDraft {
  /** The stored rule this card edits; null for a new one. */
  original: QuotaStatus | null;
  model: string;
  window: string;
  maxRequests: string;
  maxTokens: string;
}

const draftOf = (rule: QuotaStatus): RuleDraft => ({
  original: rule,
  model: rule.model,
  window: rule.window,
  maxRequests: rule.max_requests === null ? '' : String(rule.max_requests),
  maxTokens: rule.max_total_tokens === null ? '' : String(rule.max_total_tokens),
});

// The reference's UI sends `value || null`, turning 0 into "unlimited"; 0 stays 0 here.
const limitOf = (value: string) => (value.trim() === '' ? null : Number(value));

function Progress({
  current,
  max,
  format,
}: {
  current: number;
  max: number | null;
  format: (n: number) => string;
}) {
  if (max === null) return null;
  return (
    <div className="limit-line">
      <UsageBar used={current} max={max} />
      <span className="small muted num">
        {format(current)} / {format(max)}
      </span>
    </div>
  );
}

/** The reference's "Quotas" section of the admin Users page (localai-reference-control.md 1.7). */
export function QuotaRulesDialog({ user, onClose }: { user: AdminUser | null; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const quotas = useQuotas(user?.id ?? null, user !== null);
  const models = useModels();
  const save = useSaveQuotas(user?.id ?? '');
  const notify = useToast();
  const [rules, setRules] = useState<RuleDraft[] | null>(null);
  const { reset } = save;

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (user && !dialog.open) {
      setRules(null);
      reset();
      dialog.showModal();
    }
    if (!user && dialog.open) dialog.close();
  }, [user, reset]);
  useEffect(() => {
    if (user && rules === null && quotas.data) setRules(quotas.data.map(draftOf));
  }, [user, rules, quotas.data]);

  const update = (index: number, change: Partial<RuleDraft>) =>
    setRules((current) => (current ?? []).map((rule, i) => (i === index ? { ...rule, ...change } : rule)));
  const submit = () => {
    if (!rules || !quotas.data) return;
    const kept = new Set(
      rules.filter((r) => r.original && r.original.model === r.model).map((r) => r.original?.id),
    );
    // A rule whose model changed is deleted and created again (fix list 5): an upsert by (user, model)
    // would leave the old one in place.
    const remove = quotas.data.filter((rule) => !kept.has(rule.id)).map((rule) => rule.id);
    const save2 = rules.map((rule) => ({
      model: rule.model,
      window: rule.window,
      max_requests: limitOf(rule.maxRequests),
      max_total_tokens: limitOf(rule.maxTokens),
    }));
    save.mutate(
      { remove, save: save2 },
      {
        onSuccess: () => {
          notify('Quotas saved');
          onClose();
        },
      },
    );
  };
  const live = new Map((quotas.data ?? []).map((rule) => [rule.id, rule]));
  const modelIds = (models.data ?? []).map((model) => model.id);

  return (
    <dialog
      ref={ref}
      className="dialog dialog-wide"
      aria-labelledby="quota-title"
      onClose={onClose}
      onCancel={onClose}
    >
      <h2 id="quota-title">Quotas of {user?.name || user?.email}</h2>
      {user ? <UserBudgetFields user={user} /> : null}
      <h3>Quota rules</h3>
      {rules === null ? <Loading /> : null}
      {rules && rules.length === 0 ? <p className="muted">No quota rules — unlimited access</p> : null}
      <div className="stack" style={{ gap: 12 }}>
        {(rules ?? []).map((rule, index) => {
          const current = rule.original ? live.get(rule.original.id) : undefined;
          return (
            <div className="limit-panel" key={rule.original?.id ?? `new-${index}`} data-testid="quota-rule">
              <div className="row" style={{ flexWrap: 'wrap', gap: 8, alignItems: 'flex-end' }}>
                <div className="field" style={{ flex: '1 1 160px' }}>
                  <label htmlFor={`quota-model-${index}`}>Model</label>
                  <select
                    id={`quota-model-${index}`}
                    className="select"
                    value={rule.model}
                    onChange={(e) => update(index, { model: e.target.value })}
                  >
                    <option value="">All models</option>
                    {modelIds.map((model) => (
                      <option key={model} value={model}>
                        {model}
                      </option>
                    ))}
                    {rule.model && !modelIds.includes(rule.model) ? (
                      <option value={rule.model}>{rule.model}</option>
                    ) : null}
                  </select>
                </div>
                <div className="field" style={{ flex: '1 1 140px' }}>
                  <label htmlFor={`quota-window-${index}`}>Window</label>
                  <select
                    id={`quota-window-${index}`}
                    className="select"
                    value={rule.window}
                    onChange={(e) => update(index, { window: e.target.value })}
                  >
                    {QUOTA_WINDOWS.map((window) => (
                      <option key={window} value={window}>
                        {WINDOW_LABELS[window]}
                      </option>
                    ))}
                    {!(QUOTA_WINDOWS as readonly string[]).includes(rule.window) ? (
                      <option value={rule.window}>per {rule.window}</option>
                    ) : null}
                  </select>
                </div>
                <div className="field" style={{ flex: '1 1 110px' }}>
                  <label htmlFor={`quota-requests-${index}`}>Max requests</label>
                  <input
                    id={`quota-requests-${index}`}
                    className="input"
                    type="number"
                    min={0}
                    placeholder="Unlimited"
                    value={rule.maxRequests}
                    onChange={(e) => update(index, { maxRequests: e.target.value })}
                  />
                </div>
                <div className="field" style={{ flex: '1 1 110px' }}>
                  <label htmlFor={`quota-tokens-${index}`}>Max tokens</label>
                  <input
                    id={`quota-tokens-${index}`}
                    className="input"
                    type="number"
                    min={0}
                    placeholder="Unlimited"
                    value={rule.maxTokens}
                    onChange={(e) => update(index, { maxTokens: e.target.value })}
                  />
                </div>
                <button
                  type="button"
                  className="btn btn-sm btn-ghost"
                  aria-label="Remove rule"
                  onClick={() => setRules((all) => (all ?? []).filter((_, i) => i !== index))}
                >
                  <Trash2 size={14} aria-hidden="true" />
                </button>
              </div>
              {current ? (
                <>
                  <Progress
                    current={current.current_requests}
                    max={current.max_requests}
                    format={formatCount}
                  />
                  <Progress
                    current={current.current_total_tokens}
                    max={current.max_total_tokens}
                    format={formatTokens}
                  />
                </>
              ) : null}
            </div>
          );
        })}
      </div>
      <InlineError error={save.error} />
      <div className="dialog-actions">
        <button
          type="button"
          className="btn btn-ghost"
          onClick={() =>
            setRules((all) => [
              ...(all ?? []),
              { original: null, model: '', window: '1h', maxRequests: '', maxTokens: '' },
            ])
          }
        >
          <Plus size={14} aria-hidden="true" /> Add rule
        </button>
        <span className="spacer" />
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="btn btn-primary"
          onClick={submit}
          disabled={rules === null || save.isPending}
        >
          Save quotas
        </button>
      </div>
    </dialog>
  );
}
