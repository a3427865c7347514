import { createColumnHelper } from '@tanstack/react-table';
import { ChevronDown, ChevronRight, KeyRound, Pause, Play, RefreshCw, Trash2 } from 'lucide-react';
import { type ReactNode, useMemo, useState } from 'react';
import { KEY_SCOPES, type KeyScope } from '../../shared/access.ts';
import type { ApiKey, CreatedApiKey, UpdateApiKeyRequest } from '../api.ts';
import { formatDate, formatDateTime, formatRelative, formatTokens } from '../format.ts';
import { ConfirmDialog } from './ConfirmDialog.tsx';
import { DataTable } from './DataTable.tsx';
import { accessBody, type KeyAccessDraft, KeyAccessFields } from './KeyAccessFields.tsx';
import { NewSecret } from './NewSecret.tsx';
import { RotateKeyDialog } from './RotateKeyDialog.tsx';
import { InlineError } from './States.tsx';
import { useToast } from './Toast.tsx';

/**
 * The one API-key list of the dashboard: the account page's own keys and the admin's view of a
 * user's keys. Each key shows its state (revoked, expired, disabled, rotating), its scopes and
 * allowlists, and opens a details area (access editing, plus whatever `extraDetails` adds, e.g.
 * limits); rotate, disable/enable and revoke ask for confirmation first.
 */
export interface ApiKeyActions {
  update: (id: string, body: UpdateApiKeyRequest) => Promise<unknown>;
  revoke: (id: string) => Promise<unknown>;
  /** Absent where the caller cannot rotate (the admin view). */
  rotate?: (id: string, grace: string) => Promise<CreatedApiKey>;
}

type KeyRow = ApiKey & { tokens30d?: number | null };
const column = createColumnHelper<KeyRow>();

function keyStates(key: ApiKey): { label: string; className: string }[] {
  if (key.revokedAt) return [{ label: 'revoked', className: 'badge badge-danger' }];
  const states: { label: string; className: string }[] = [];
  if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now())
    states.push({ label: 'expired', className: 'badge badge-warning' });
  if (key.disabled) states.push({ label: 'disabled', className: 'badge badge-warning' });
  if (key.previousKeyValidUntil) states.push({ label: 'rotating', className: 'badge badge-primary' });
  return states;
}

function scopeSummary(key: ApiKey): string {
  return key.scopes.includes('all') ? 'all' : key.scopes.join(', ');
}

function draftOf(key: ApiKey, isAdmin: boolean): KeyAccessDraft {
  return {
    scopes: key.scopes.includes('all')
      ? KEY_SCOPES.filter((scope) => scope !== 'admin' || isAdmin)
      : (key.scopes as KeyScope[]),
    models: (key.allowedModels ?? []).join(', '),
    ips: (key.allowedIps ?? []).join(', '),
  };
}

type Pending = { kind: 'revoke' | 'disable' | 'enable' | 'rotate'; key: ApiKey } | null;

export function ApiKeyList({
  keys,
  caption,
  owner,
  isAdmin,
  tokens,
  actions,
  extraDetails,
}: {
  keys: ApiKey[];
  caption: string;
  /** "your" or the owner's name, for the confirmations. */
  owner?: string;
  /** Whether the keys' owner is an admin (offers the admin scope). */
  isAdmin: boolean;
  /** Tokens of the last 30 days per key id: undefined hides the column, null shows it loading. */
  tokens?: Map<string, number> | null;
  actions: ApiKeyActions;
  extraDetails?: (key: ApiKey) => ReactNode;
}) {
  const notify = useToast();
  const [open, setOpen] = useState<string | null>(null);
  const [pending, setPending] = useState<Pending>(null);
  const [rotated, setRotated] = useState<CreatedApiKey | null>(null);
  const showTokens = tokens !== undefined;
  const rows = useMemo<KeyRow[]>(
    () =>
      showTokens
        ? keys.map((key) => ({ ...key, tokens30d: tokens === null ? null : (tokens.get(key.id) ?? 0) }))
        : keys,
    [keys, tokens, showTokens],
  );

  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'Name',
        cell: (info) => {
          const key = info.row.original;
          const limited = key.allowedModels !== null || key.allowedIps !== null;
          return (
            <span style={{ display: 'block' }}>
              <span className="name-cell">
                <KeyRound size={15} aria-hidden="true" className="muted" />
                <strong>{info.getValue()}</strong>
                {keyStates(key).map((state) => (
                  <span key={state.label} className={state.className}>
                    {state.label}
                  </span>
                ))}
              </span>
              <span className="small muted" data-testid="key-access">
                {scopeSummary(key)}
                {limited ? ' · restricted' : ''}
              </span>
            </span>
          );
        },
      }),
      column.accessor('keyPrefix', {
        header: 'Prefix',
        cell: (info) => <code className="nowrap">{info.getValue()}…</code>,
      }),
      column.accessor('createdAt', {
        header: 'Created',
        cell: (info) => <span className="nowrap">{formatDate(info.getValue())}</span>,
      }),
      column.accessor('lastUsed', {
        header: 'Last used',
        cell: (info) => (info.getValue() ? formatRelative(info.getValue()) : 'never'),
      }),
      column.accessor('expiresAt', {
        header: 'Expires',
        cell: (info) => (info.getValue() ? formatDate(info.getValue()) : 'never'),
      }),
      ...(showTokens
        ? [
            column.accessor('tokens30d', {
              id: 'tokens',
              header: 'Tokens (30 d)',
              meta: { className: 'num' },
              cell: (info) => {
                const value = info.getValue();
                return value === null || value === undefined ? '…' : formatTokens(value);
              },
            }),
          ]
        : []),
      column.display({
        id: 'actions',
        header: () => <span className="sr-only">Actions</span>,
        meta: { className: 'num' },
        cell: (info) => {
          const key = info.row.original;
          const expanded = open === key.id;
          return (
            <div className="row" style={{ justifyContent: 'flex-end', flexWrap: 'nowrap', gap: 4 }}>
              <button
                type="button"
                className="btn btn-sm btn-ghost btn-icon"
                title="Details"
                aria-expanded={expanded}
                aria-label={`Details of ${key.name}`}
                onClick={() => setOpen(expanded ? null : key.id)}
              >
                {expanded ? (
                  <ChevronDown size={14} aria-hidden="true" />
                ) : (
                  <ChevronRight size={14} aria-hidden="true" />
                )}
              </button>
              {key.revokedAt ? null : (
                <>
                  {actions.rotate ? (
                    <button
                      type="button"
                      className="btn btn-sm btn-ghost btn-icon"
                      aria-label={`Rotate ${key.name}`}
                      title="Rotate: issue a new secret"
                      onClick={() => setPending({ kind: 'rotate', key })}
                    >
                      <RefreshCw size={14} aria-hidden="true" />
                    </button>
                  ) : null}
                  <button
                    type="button"
                    className="btn btn-sm btn-ghost btn-icon"
                    aria-label={`${key.disabled ? 'Enable' : 'Disable'} ${key.name}`}
                    title={key.disabled ? 'Enable' : 'Disable (without revoking)'}
                    onClick={() => setPending({ kind: key.disabled ? 'enable' : 'disable', key })}
                  >
                    {key.disabled ? (
                      <Play size={14} aria-hidden="true" />
                    ) : (
                      <Pause size={14} aria-hidden="true" />
                    )}
                  </button>
                  <button
                    type="button"
                    className="btn btn-sm btn-ghost btn-icon"
                    onClick={() => setPending({ kind: 'revoke', key })}
                    aria-label={`Revoke ${key.name}`}
                    title="Revoke"
                  >
                    <Trash2 size={14} aria-hidden="true" />
                  </button>
                </>
              )}
            </div>
          );
        },
      }),
    ],
    [open, actions.rotate, showTokens],
  );

  const whose = owner ? `${owner}'s` : 'this';
  const confirm =
    pending && pending.kind !== 'rotate' ? CONFIRMS[pending.kind](pending.key.name, whose) : null;
  const run = (work: Promise<unknown>, done: string) =>
    work.then(
      () => notify(done),
      (error: Error) => notify(error.message, 'error'),
    );

  return (
    <>
      {rotated ? (
        <NewSecret
          secret={rotated.key}
          title={`New secret for "${rotated.name}": copy it now, it won't be shown again`}
          note={
            rotated.previousKeyValidUntil
              ? `The old secret keeps working until ${formatDateTime(rotated.previousKeyValidUntil)}.`
              : 'The old secret has stopped working.'
          }
          onDismiss={() => setRotated(null)}
        />
      ) : null}
      <DataTable
        data={rows}
        columns={columns}
        caption={caption}
        rowProps={(row) => ({
          className: row.original.revokedAt ? 'revoked' : undefined,
          'data-testid': 'api-key-row',
        })}
        renderDetails={(row) =>
          open === row.original.id ? (
            <KeyDetails key={row.original.id} apiKey={row.original} isAdmin={isAdmin} actions={actions}>
              {extraDetails?.(row.original)}
            </KeyDetails>
          ) : null
        }
      />
      <ConfirmDialog
        open={confirm !== null}
        title={confirm?.title ?? ''}
        message={confirm?.message ?? ''}
        confirmLabel={confirm?.label ?? 'Confirm'}
        danger={pending?.kind !== 'enable'}
        onCancel={() => setPending(null)}
        onConfirm={() => {
          if (!pending) return;
          const { kind, key } = pending;
          if (kind === 'revoke') run(actions.revoke(key.id), 'API key revoked');
          if (kind === 'disable') run(actions.update(key.id, { disabled: true }), 'API key disabled');
          if (kind === 'enable') run(actions.update(key.id, { disabled: false }), 'API key enabled');
          setPending(null);
        }}
      />
      <RotateKeyDialog
        apiKey={pending?.kind === 'rotate' ? pending.key : null}
        onCancel={() => setPending(null)}
        onConfirm={(grace) => {
          const key = pending?.key;
          setPending(null);
          if (!key || !actions.rotate) return;
          actions.rotate(key.id, grace).then(
            (created) => {
              setRotated(created);
              notify('API key rotated');
            },
            (error: Error) => notify(error.message, 'error'),
          );
        }}
      />
    </>
  );
}

const CONFIRMS = {
  revoke: (name: string, whose: string) => ({
    title: 'Revoke API key',
    message: `Revoke ${whose} API key "${name}"? Programs using it stop working at once. This cannot be undone.`,
    label: 'Revoke',
  }),
  disable: (name: string, whose: string) => ({
    title: 'Disable API key',
    message: `Disable ${whose} API key "${name}"? Requests with it are refused until it is enabled again; nothing else changes.`,
    label: 'Disable',
  }),
  enable: (name: string, whose: string) => ({
    title: 'Enable API key',
    message: `Enable ${whose} API key "${name}" again? Programs holding it can use it at once.`,
    label: 'Enable',
  }),
};

function KeyDetails({
  apiKey,
  isAdmin,
  actions,
  children,
}: {
  apiKey: ApiKey;
  isAdmin: boolean;
  actions: ApiKeyActions;
  children?: ReactNode;
}) {
  const notify = useToast();
  const [draft, setDraft] = useState(() => draftOf(apiKey, isAdmin));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      await actions.update(apiKey.id, accessBody(draft));
      notify('Access saved');
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="stack key-details" style={{ gap: 12, padding: '8px 4px' }} data-testid="key-details">
      <dl
        className="small"
        style={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', gap: '4px 12px', margin: 0 }}
      >
        <dt className="muted">Scopes</dt>
        <dd style={{ margin: 0 }}>{scopeSummary(apiKey)}</dd>
        <dt className="muted">Models</dt>
        <dd style={{ margin: 0 }}>
          {apiKey.allowedModels ? apiKey.allowedModels.join(', ') : 'every model its owner may use'}
        </dd>
        <dt className="muted">Addresses</dt>
        <dd style={{ margin: 0 }}>{apiKey.allowedIps ? apiKey.allowedIps.join(', ') : 'any'}</dd>
        {apiKey.previousKeyValidUntil ? (
          <>
            <dt className="muted">Rotation</dt>
            <dd style={{ margin: 0 }} data-testid="rotating-note">
              rotating, old secret valid until {formatDateTime(apiKey.previousKeyValidUntil)}
            </dd>
          </>
        ) : null}
        {apiKey.disabledAt ? (
          <>
            <dt className="muted">Disabled</dt>
            <dd style={{ margin: 0 }}>since {formatDateTime(apiKey.disabledAt)}</dd>
          </>
        ) : null}
      </dl>
      {apiKey.revokedAt ? null : (
        <>
          <KeyAccessFields draft={draft} onChange={setDraft} isAdmin={isAdmin} />
          <InlineError error={error} />
          <div>
            <button
              type="button"
              className="btn btn-sm btn-primary"
              disabled={busy || draft.scopes.length === 0}
              onClick={save}
            >
              Save access
            </button>
          </div>
        </>
      )}
      {children}
    </div>
  );
}
