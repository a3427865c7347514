import { useQueryClient } from '@tanstack/react-query';
import { createColumnHelper } from '@tanstack/react-table';
import { KeyRound, Plus, Trash2, X } from 'lucide-react';
import { type FormEvent, useMemo, useState } from 'react';
import { type ApiKey, api, type CreatedApiKey, type SessionUser } from '../api.ts';
import { ClientSetupHint } from '../components/ClientSetupHint.tsx';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { CopyButton } from '../components/CopyButton.tsx';
import { DataTable } from '../components/DataTable.tsx';
import { SignInMethods } from '../components/SignInMethods.tsx';
import { Empty, ErrorState, InlineError, Loading } from '../components/States.tsx';
import { useToast } from '../components/Toast.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { formatDate, formatRelative, formatTokens } from '../format.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useApiKeys, useCreateApiKey, useRevokeApiKey } from '../hooks/useApiKeys.ts';
import { useUsageSources } from '../hooks/useUsageSources.ts';
import { useQueryState } from '../router.ts';

const TABS = [
  ['keys', 'API keys'],
  ['profile', 'Profile'],
  ['security', 'Security'],
] as const;

export function AccountPage({ user }: { user: SessionUser }) {
  const [query, setQuery] = useQueryState();
  const tab = query.get('tab') ?? 'keys';
  return (
    <>
      <div className="page-head">
        <div>
          <h1>API keys &amp; account</h1>
          <p>Keys let scripts and apps call the gateway as you. Their usage appears under Usage → Sources.</p>
        </div>
      </div>
      <div className="tabs" role="tablist" onKeyDown={onTabListKeyDown} aria-label="Account sections">
        {TABS.map(([value, label]) => (
          <button
            key={value}
            type="button"
            role="tab"
            aria-selected={tab === value}
            onClick={() => setQuery({ tab: value === 'keys' ? null : value })}
          >
            {label}
          </button>
        ))}
      </div>
      {tab === 'profile' ? <ProfileTab user={user} /> : null}
      {tab === 'security' ? (
        <>
          <SignInMethods user={user} />
          {user.provider === 'local' ? <SecurityTab /> : null}
        </>
      ) : null}
      {tab === 'keys' ? <ApiKeysTab /> : null}
    </>
  );
}

const EXPIRY_OPTIONS = [
  ['', 'Never expires'],
  ['7d', '7 days'],
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['1y', '1 year'],
] as const;

function keyState(key: ApiKey): { label: string; className: string } | null {
  if (key.revokedAt) return { label: 'revoked', className: 'badge badge-danger' };
  if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now())
    return { label: 'expired', className: 'badge badge-warning' };
  return null;
}

/** A key with its tokens of the last 30 days (null until the usage answer arrives). */
type KeyRow = ApiKey & { tokens30d: number | null };
const column = createColumnHelper<KeyRow>();
const LAST_30_DAYS = { period: 'month' } as const;

function ApiKeysTab() {
  const keys = useApiKeys();
  // The caller's own sources answer says how much each key was used in the last 30 days.
  const usage = useUsageSources(LAST_30_DAYS, false);
  // The tokens go into the row data, not an accessor closure: the table caches each row's values
  // until its data changes, so a closure over the usage answer kept showing 0 after it arrived.
  const rows = useMemo<KeyRow[] | undefined>(() => {
    if (!keys.data) return undefined;
    const tokensByKey = new Map((usage.data?.totals.by_key ?? []).map((k) => [k.api_key_id, k.tokens]));
    return keys.data.map((key) => ({
      ...key,
      tokens30d: usage.data ? (tokensByKey.get(key.id) ?? 0) : null,
    }));
  }, [keys.data, usage.data]);
  const create = useCreateApiKey();
  const revoke = useRevokeApiKey();
  const notify = useToast();
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [pending, setPending] = useState<ApiKey | null>(null);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    create.mutate(
      { name: trimmed, ...(expiresIn ? { expiresIn } : {}) },
      {
        onSuccess: (key) => {
          setCreated(key);
          setName('');
          notify('API key created');
        },
      },
    );
  };

  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'Name',
        cell: (info) => {
          const state = keyState(info.row.original);
          return (
            <span className="name-cell">
              <KeyRound size={15} aria-hidden="true" className="muted" />
              <strong>{info.getValue()}</strong>
              {state ? <span className={state.className}>{state.label}</span> : null}
            </span>
          );
        },
      }),
      column.accessor('keyPrefix', {
        header: 'Prefix',
        cell: (info) => <code>{info.getValue()}…</code>,
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
      column.accessor('tokens30d', {
        id: 'tokens',
        header: 'Tokens (30 d)',
        meta: { className: 'num' },
        cell: (info) => {
          const tokens = info.getValue();
          return tokens === null ? '…' : formatTokens(tokens);
        },
      }),
      column.display({
        id: 'actions',
        header: () => <span className="sr-only">Actions</span>,
        meta: { className: 'num' },
        cell: (info) =>
          info.row.original.revokedAt ? null : (
            <button
              type="button"
              className="btn btn-sm btn-ghost"
              onClick={() => setPending(info.row.original)}
              aria-label={`Revoke ${info.row.original.name}`}
            >
              <Trash2 size={14} aria-hidden="true" />
              Revoke
            </button>
          ),
      }),
    ],
    [],
  );

  return (
    <div className="stack">
      <section className="card" aria-labelledby="create-key-title">
        <div className="card-head">
          <div>
            <h2 id="create-key-title">Create a key</h2>
            <p>Give it a name you will recognise in the usage breakdown, e.g. the app or machine using it.</p>
          </div>
        </div>
        <form className="row" onSubmit={submit} style={{ alignItems: 'flex-end', gap: 12 }}>
          <div className="field" style={{ flex: '1 1 220px' }}>
            <label htmlFor="key-name">Name</label>
            <input
              id="key-name"
              className="input"
              maxLength={64}
              placeholder="Key name (e.g. my-app)"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          </div>
          <div className="field" style={{ flex: '0 1 170px' }}>
            <label htmlFor="key-expiry">Expiry</label>
            <select
              id="key-expiry"
              className="select"
              value={expiresIn}
              onChange={(e) => setExpiresIn(e.target.value)}
            >
              {EXPIRY_OPTIONS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn btn-primary" disabled={!name.trim() || create.isPending}>
            <Plus size={16} aria-hidden="true" />
            Create
          </button>
        </form>
        {create.isError ? (
          <div style={{ marginTop: 12 }}>
            <InlineError error={create.error} />
          </div>
        ) : null}
        {created ? (
          <div
            className="alert alert-warning"
            role="status"
            style={{ marginTop: 16, flexDirection: 'column' }}
          >
            <div className="row" style={{ width: '100%' }}>
              <strong>Copy now — this key won't be shown again</strong>
              <span className="spacer" />
              <button
                type="button"
                className="btn btn-sm btn-ghost btn-icon"
                onClick={() => setCreated(null)}
                aria-label="Dismiss"
              >
                <X size={14} aria-hidden="true" />
              </button>
            </div>
            <div className="secret" style={{ width: '100%' }}>
              <code data-testid="new-key">{created.key}</code>
              <CopyButton text={created.key} />
            </div>
            <ClientSetupHint origin={window.location.origin} />
          </div>
        ) : null}
      </section>

      <section className="card" aria-labelledby="keys-title">
        <div className="card-head">
          <h2 id="keys-title">Your keys</h2>
        </div>
        {keys.isPending ? <Loading /> : null}
        {keys.isError ? <ErrorState error={keys.error} onRetry={() => keys.refetch()} /> : null}
        {keys.data && keys.data.length === 0 ? (
          <Empty title="No API keys yet">Create one above to get programmatic access.</Empty>
        ) : null}
        {rows && rows.length > 0 ? (
          <DataTable
            data={rows}
            columns={columns}
            caption="Your API keys"
            rowProps={(row) => ({ className: row.original.revokedAt ? 'revoked' : undefined })}
          />
        ) : null}
      </section>

      <ConfirmDialog
        open={pending !== null}
        title="Revoke API key"
        message={`Revoke API key "${pending?.name ?? ''}"? Programs using it stop working at once. This cannot be undone.`}
        confirmLabel="Revoke"
        busy={revoke.isPending}
        onCancel={() => setPending(null)}
        onConfirm={() => {
          if (!pending) return;
          revoke.mutate(pending.id, {
            onSuccess: () => notify('API key revoked'),
            onError: (error) => notify(`Could not revoke: ${error.message}`, 'error'),
          });
          setPending(null);
        }}
      />
    </div>
  );
}

function ProfileTab({ user }: { user: SessionUser }) {
  const client = useQueryClient();
  const notify = useToast();
  const [name, setName] = useState(user.name);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await api.updateProfile(name.trim());
      await client.invalidateQueries({ queryKey: queryKeys.status });
      notify('Profile saved');
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <section className="card" style={{ maxWidth: 560 }}>
      <form className="form" onSubmit={submit}>
        <div className="field">
          <label htmlFor="profile-email">Email</label>
          <input id="profile-email" className="input" value={user.email} readOnly />
        </div>
        <div className="field">
          <label htmlFor="profile-name">Display name</label>
          <input id="profile-name" className="input" value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <InlineError error={error} />
        <div>
          <button type="submit" className="btn btn-primary" disabled={!name.trim()}>
            Save
          </button>
        </div>
      </form>
    </section>
  );
}

function SecurityTab() {
  const notify = useToast();
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    setError(null);
    try {
      await api.changePassword(
        String(data.get('current')),
        String(data.get('next')),
        data.get('weak') === 'on',
      );
      form.reset();
      notify('Password changed; other sessions were signed out');
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <section className="card" style={{ maxWidth: 560 }}>
      <form className="form" onSubmit={submit}>
        <h2>Change password</h2>
        <div className="field">
          <label htmlFor="pw-current">Current password</label>
          <input
            id="pw-current"
            name="current"
            type="password"
            className="input"
            autoComplete="current-password"
            required
          />
        </div>
        <div className="field">
          <label htmlFor="pw-next">New password</label>
          <input
            id="pw-next"
            name="next"
            type="password"
            className="input"
            autoComplete="new-password"
            required
          />
        </div>
        <label className="checkbox">
          <input type="checkbox" name="weak" />
          <span>Allow a weak password</span>
        </label>
        <InlineError error={error} />
        <div>
          <button type="submit" className="btn btn-primary">
            Change password
          </button>
        </div>
      </form>
    </section>
  );
}
