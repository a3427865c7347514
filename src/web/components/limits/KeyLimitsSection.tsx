import { Gauge } from 'lucide-react';
import { useEffect, useRef, useState } from 'react';
import type { KeyLimitsStatus, LimitUsage } from '../../../shared/limits.ts';
import { formatCount, formatDateTime, formatTokens, formatUsd } from '../../format.ts';
import { useKeyLimits, useSetKeyLimits, useUserLimits } from '../../hooks/useLimits.ts';
import { ErrorState, InlineError } from '../States.tsx';
import { useToast } from '../Toast.tsx';
import { draftOf, EMPTY_DRAFT, type KeyLimitsDraft, KeyLimitsFields, limitsOf } from './KeyLimitsFields.tsx';
import { UsageBar } from './UsageBar.tsx';

const LABELS: Record<LimitUsage['limit'], string> = {
  rpm: 'Requests / minute',
  tpm: 'Tokens / minute',
  max_parallel: 'In flight',
  token_budget: 'Token budget',
  usd_budget: 'Budget (USD)',
};

/** The badge of a key: over its soft threshold, or its budget spent. */
export function LimitBadge({ status }: { status: KeyLimitsStatus }) {
  if (status.exhausted) return <span className="badge badge-danger">budget spent</span>;
  if (status.soft_exceeded)
    return (
      <span className="badge badge-warning" data-testid="soft-badge">
        over {status.limits.soft_threshold}%
      </span>
    );
  return null;
}

function UsageLine({ usage }: { usage: LimitUsage }) {
  const format =
    usage.limit === 'usd_budget'
      ? formatUsd
      : usage.limit === 'tpm' || usage.limit === 'token_budget'
        ? formatTokens
        : formatCount;
  return (
    <div className="limit-line" data-testid={`limit-${usage.limit}`}>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <span>{LABELS[usage.limit]}</span>
        <span className="num">
          <span data-testid="used">{format(usage.used)}</span> / {format(usage.max)}
        </span>
      </div>
      <UsageBar used={usage.used} max={usage.max} />
      {usage.resets_at && usage.used > 0 ? (
        <span className="hint">resets at {formatDateTime(usage.resets_at)}</span>
      ) : null}
    </div>
  );
}

/**
 * One panel per key with limits: used / limit / resets at, the soft-threshold badge and the 429s of
 * the last 24 hours, with an edit dialog. `userId` null: the caller's keys; else an admin's view.
 */
export function KeyLimitsSection({ userId, names }: { userId: string | null; names: Map<string, string> }) {
  const limits = useKeyLimits(userId);
  const [editing, setEditing] = useState<KeyLimitsStatus | null>(null);
  if (limits.isError) return <ErrorState error={limits.error} onRetry={() => limits.refetch()} />;
  const keys = (limits.data ?? []).filter((status) => names.has(status.id));
  return (
    <section className="card" aria-labelledby={`limits-title-${userId ?? 'self'}`}>
      <div className="card-head">
        <h2 id={`limits-title-${userId ?? 'self'}`}>
          <Gauge size={16} aria-hidden="true" /> Limits
        </h2>
      </div>
      {keys.length === 0 ? (
        <p className="muted">No key has limits. Set them when creating a key, or with “Set limits” below.</p>
      ) : null}
      <div className="limit-panels">
        {userId === null ? <AccountBudget /> : null}
        {keys.map((status) => (
          <article
            key={status.id}
            className="limit-panel"
            data-testid="key-limits-panel"
            aria-label={`Limits of ${names.get(status.id) ?? ''}`}
          >
            <div className="row" style={{ justifyContent: 'space-between' }}>
              <strong>{names.get(status.id)}</strong>
              <LimitBadge status={status} />
            </div>
            {status.usage.map((usage) => (
              <UsageLine key={usage.limit} usage={usage} />
            ))}
            <div className="row" style={{ justifyContent: 'space-between' }}>
              <span className="small muted" data-testid="rejected">
                {status.rejected} rejected (24 h)
              </span>
              <button type="button" className="btn btn-sm" onClick={() => setEditing(status)}>
                Edit limits
              </button>
            </div>
          </article>
        ))}
      </div>
      <SetLimitsPicker
        userId={userId}
        names={names}
        limited={new Set(keys.map((k) => k.id))}
        onPick={setEditing}
      />
      <EditLimitsDialog
        admin={userId !== null}
        status={editing}
        name={editing ? (names.get(editing.id) ?? '') : ''}
        onClose={() => setEditing(null)}
      />
    </section>
  );
}

/** Keys without limits yet: pick one to give it some. */
function SetLimitsPicker({
  names,
  limited,
  onPick,
}: {
  userId: string | null;
  names: Map<string, string>;
  limited: Set<string>;
  onPick: (status: KeyLimitsStatus) => void;
}) {
  const free = [...names].filter(([id]) => !limited.has(id));
  if (free.length === 0) return null;
  return (
    <div className="row" style={{ marginTop: 12, gap: 8, flexWrap: 'wrap' }}>
      <span className="small muted">Set limits:</span>
      {free.map(([id, name]) => (
        <button
          key={id}
          type="button"
          className="btn btn-sm btn-ghost"
          onClick={() =>
            onPick({
              id,
              limits: limitsOf(EMPTY_DRAFT),
              usage: [],
              soft_exceeded: false,
              exhausted: false,
              rejected: 0,
            })
          }
        >
          {name}
        </button>
      ))}
    </div>
  );
}

function EditLimitsDialog({
  admin,
  status,
  name,
  onClose,
}: {
  admin: boolean;
  status: KeyLimitsStatus | null;
  name: string;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [draft, setDraft] = useState<KeyLimitsDraft>(EMPTY_DRAFT);
  const save = useSetKeyLimits(admin);
  const notify = useToast();
  const { reset } = save;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (status && !dialog.open) {
      setDraft(draftOf(status.limits));
      reset();
      dialog.showModal();
    }
    if (!status && dialog.open) dialog.close();
  }, [status, reset]);
  return (
    <dialog
      ref={ref}
      className="dialog dialog-wide"
      aria-labelledby="edit-limits-title"
      onClose={onClose}
      onCancel={onClose}
    >
      <form
        className="form"
        onSubmit={(event) => {
          event.preventDefault();
          if (!status) return;
          save.mutate(
            { id: status.id, limits: limitsOf(draft) },
            {
              onSuccess: () => {
                notify('Limits saved');
                onClose();
              },
            },
          );
        }}
      >
        <h2 id="edit-limits-title">Limits of {name}</h2>
        <KeyLimitsFields idPrefix="edit-limits" draft={draft} onChange={setDraft} />
        <InlineError error={save.error} />
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={save.isPending}>
            Save limits
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** The caller's own budgets over all their traffic, when an administrator set any. */
function AccountBudget() {
  const status = useUserLimits(null);
  if (!status.data || status.data.usage.length === 0) return null;
  return (
    <article className="limit-panel" data-testid="account-budget-panel" aria-label="Your account budget">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <strong>Your account (all keys and the web UI)</strong>
        {status.data.exhausted ? (
          <span className="badge badge-danger">budget spent</span>
        ) : status.data.soft_exceeded ? (
          <span className="badge badge-warning">over {status.data.limits.soft_threshold}%</span>
        ) : null}
      </div>
      {status.data.usage.map((usage) => (
        <UsageLine key={usage.limit} usage={usage} />
      ))}
    </article>
  );
}
