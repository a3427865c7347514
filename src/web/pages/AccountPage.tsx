import { useQueryClient } from '@tanstack/react-query';
import { Plus } from 'lucide-react';
import { type FormEvent, useMemo, useState } from 'react';
import { api, type CreatedApiKey, type SessionUser } from '../api.ts';
import { type ApiKeyActions, ApiKeyList } from '../components/ApiKeyList.tsx';
import {
  accessBody,
  DEFAULT_ACCESS_DRAFT,
  type KeyAccessDraft,
  KeyAccessFields,
} from '../components/KeyAccessFields.tsx';
import { NewSecret } from '../components/NewSecret.tsx';
import { SignInMethods } from '../components/SignInMethods.tsx';
import { Empty, ErrorState, InlineError, Loading } from '../components/States.tsx';
import { useToast } from '../components/Toast.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { queryKeys } from '../hooks/keys.ts';
import {
  useApiKeys,
  useCreateApiKey,
  useRevokeApiKey,
  useRotateApiKey,
  useUpdateApiKey,
} from '../hooks/useApiKeys.ts';
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
            tabIndex={tab === value ? 0 : -1}
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
      {tab === 'keys' ? <ApiKeysTab user={user} /> : null}
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

const LAST_30_DAYS = { period: 'month' } as const;

function ApiKeysTab({ user }: { user: SessionUser }) {
  const keys = useApiKeys();
  // The caller's own sources answer says how much each key was used in the last 30 days.
  const usage = useUsageSources(LAST_30_DAYS, false);
  const tokens = useMemo(
    () => (usage.data ? new Map(usage.data.totals.by_key.map((k) => [k.api_key_id, k.tokens])) : null),
    [usage.data],
  );
  const create = useCreateApiKey();
  const update = useUpdateApiKey();
  const rotate = useRotateApiKey();
  const revoke = useRevokeApiKey();
  const notify = useToast();
  const [name, setName] = useState('');
  const [expiresIn, setExpiresIn] = useState('');
  const [access, setAccess] = useState<KeyAccessDraft>(DEFAULT_ACCESS_DRAFT);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const isAdmin = user.role === 'admin';

  const actions = useMemo<ApiKeyActions>(
    () => ({
      update: (id, body) => update.mutateAsync({ id, body }),
      rotate: (id, grace) => rotate.mutateAsync({ id, grace }),
      revoke: (id) => revoke.mutateAsync(id),
    }),
    [update.mutateAsync, rotate.mutateAsync, revoke.mutateAsync],
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return;
    create.mutate(
      { name: trimmed, ...(expiresIn ? { expiresIn } : {}), ...accessBody(access) },
      {
        onSuccess: (key) => {
          setCreated(key);
          setName('');
          setAccess(DEFAULT_ACCESS_DRAFT);
          notify('API key created');
        },
      },
    );
  };

  return (
    <div className="stack">
      <section className="card" aria-labelledby="create-key-title">
        <div className="card-head">
          <div>
            <h2 id="create-key-title">Create a key</h2>
            <p>Give it a name you will recognise in the usage breakdown, e.g. the app or machine using it.</p>
          </div>
        </div>
        <form className="stack" onSubmit={submit} style={{ gap: 12 }}>
          <div className="row" style={{ alignItems: 'flex-end', gap: 12 }}>
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
            <button
              type="submit"
              className="btn btn-primary"
              disabled={!name.trim() || access.scopes.length === 0 || create.isPending}
            >
              <Plus size={16} aria-hidden="true" />
              Create
            </button>
          </div>
          <KeyAccessFields draft={access} onChange={setAccess} isAdmin={isAdmin} />
        </form>
        {create.isError ? (
          <div style={{ marginTop: 12 }}>
            <InlineError error={create.error} />
          </div>
        ) : null}
        {created ? (
          <NewSecret
            secret={created.key}
            title="Copy now — this key won't be shown again"
            onDismiss={() => setCreated(null)}
          />
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
        {keys.data && keys.data.length > 0 ? (
          <ApiKeyList
            keys={keys.data}
            caption="Your API keys"
            owner="your"
            isAdmin={isAdmin}
            tokens={tokens}
            actions={actions}
          />
        ) : null}
      </section>
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
