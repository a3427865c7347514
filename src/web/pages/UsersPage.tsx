import { createColumnHelper } from '@tanstack/react-table';
import { KeyRound, Plus, Search, ShieldCheck, Trash2, X } from 'lucide-react';
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { AdminUser, Invite, SessionUser } from '../api.ts';
import { type ApiKeyActions, ApiKeyList } from '../components/ApiKeyList.tsx';
import { ConfirmDialog } from '../components/ConfirmDialog.tsx';
import { CopyButton } from '../components/CopyButton.tsx';
import { DataTable } from '../components/DataTable.tsx';
import { Empty, ErrorState, InlineError, Loading } from '../components/States.tsx';
import { useToast } from '../components/Toast.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { formatDate } from '../format.ts';
import { useAdminApiKeys, useAdminRevokeApiKey, useAdminUpdateApiKey } from '../hooks/useAdminApiKeys.ts';
import { type UserAction, useAdminUsers, useUserAction } from '../hooks/useAdminUsers.ts';
import { useCreateInvite, useDeleteInvite, useInvites } from '../hooks/useInvites.ts';
import { useQueryState } from '../router.ts';
import { PermissionsDialog, permissionSummary } from './users/PermissionsDialog.tsx';

export function UsersPage({ me }: { me: SessionUser }) {
  const [query, setQuery] = useQueryState();
  const tab = query.get('tab') === 'invites' ? 'invites' : 'users';
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Users</h1>
          <p>Approve new accounts, manage roles and keys, and invite people.</p>
        </div>
      </div>
      <div className="tabs" role="tablist" onKeyDown={onTabListKeyDown} aria-label="User administration">
        <button
          type="button"
          role="tab"
          aria-selected={tab === 'users'}
          tabIndex={tab === 'users' ? 0 : -1}
          onClick={() => setQuery({ tab: null })}
        >
          Users
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={tab === 'invites'}
          tabIndex={tab === 'invites' ? 0 : -1}
          onClick={() => setQuery({ tab: 'invites' })}
        >
          Invites
        </button>
      </div>
      {tab === 'users' ? <UsersTable me={me} /> : <InvitesTab />}
    </>
  );
}

const STATUS_BADGE: Record<AdminUser['status'], string> = {
  active: 'badge badge-success',
  pending: 'badge badge-warning',
  disabled: 'badge badge-danger',
};

const column = createColumnHelper<AdminUser>();

type Confirm = { title: string; message: string; label: string; action: UserAction } | null;

function UsersTable({ me }: { me: SessionUser }) {
  const users = useAdminUsers();
  const act = useUserAction();
  const notify = useToast();
  const [query, setQuery] = useQueryState();
  const search = query.get('q') ?? '';
  const keysFor = query.get('keys');
  const [confirm, setConfirm] = useState<Confirm>(null);
  const [resetFor, setResetFor] = useState<AdminUser | null>(null);
  const [permissionsFor, setPermissionsFor] = useState<AdminUser | null>(null);

  const { mutate } = act;
  const run = useCallback(
    (action: UserAction, done: string) =>
      mutate(action, {
        onSuccess: () => notify(done),
        onError: (error) => notify(error.message, 'error'),
      }),
    [mutate, notify],
  );

  const columns = useMemo(
    () => [
      column.accessor('name', {
        header: 'User',
        cell: (info) => (
          <span className="name-cell">
            <span className="avatar" style={{ width: 28, height: 28 }} aria-hidden="true">
              {(info.getValue() || info.row.original.email).slice(0, 1).toUpperCase()}
            </span>
            <span style={{ minWidth: 0 }}>
              <strong style={{ display: 'block' }}>{info.getValue() || '—'}</strong>
              <span className="small muted">{info.row.original.email}</span>
            </span>
          </span>
        ),
      }),
      column.accessor('role', {
        header: 'Role',
        meta: { optional: true },
        cell: (i) => (
          <span style={{ display: 'block' }}>
            <span className={i.getValue() === 'admin' ? 'badge badge-primary' : 'badge'}>{i.getValue()}</span>
            <span className="small muted" style={{ display: 'block' }} data-testid="permission-summary">
              {permissionSummary(i.row.original)}
            </span>
          </span>
        ),
      }),
      column.accessor('status', {
        header: 'Status',
        meta: { optional: true },
        cell: (i) => <span className={STATUS_BADGE[i.getValue()] ?? 'badge'}>{i.getValue()}</span>,
      }),
      column.accessor('createdAt', {
        header: 'Created',
        meta: { optional: true },
        cell: (i) => <span className="nowrap">{formatDate(i.getValue())}</span>,
      }),
      column.display({
        id: 'actions',
        header: () => <span className="sr-only">Actions</span>,
        cell: (info) => {
          const user = info.row.original;
          const self = user.id === me.id;
          const who = user.name || user.email;
          return (
            <div className="row row-actions">
              <button
                type="button"
                className="btn btn-sm"
                onClick={() => setQuery({ keys: keysFor === user.id ? null : user.id })}
                aria-expanded={keysFor === user.id}
                aria-label={`API keys of ${who}`}
              >
                <KeyRound size={13} aria-hidden="true" />
                Keys
              </button>
              <button
                type="button"
                className="btn btn-sm btn-icon"
                onClick={() => setPermissionsFor(user)}
                aria-label={`Permissions of ${who}`}
                title="Permissions and model access"
              >
                <ShieldCheck size={13} aria-hidden="true" />
              </button>
              {self ? (
                <span className="small muted">(you)</span>
              ) : (
                <>
                  {user.status === 'pending' ? (
                    <button
                      type="button"
                      className="btn btn-sm btn-primary"
                      onClick={() =>
                        run({ kind: 'status', id: user.id, status: 'active' }, `${who} approved`)
                      }
                    >
                      Approve
                    </button>
                  ) : user.status === 'disabled' ? (
                    <button
                      type="button"
                      className="btn btn-sm"
                      onClick={() => run({ kind: 'status', id: user.id, status: 'active' }, `${who} enabled`)}
                    >
                      Enable
                    </button>
                  ) : (
                    <button
                      type="button"
                      className="btn btn-sm"
                      onClick={() =>
                        run({ kind: 'status', id: user.id, status: 'disabled' }, `${who} disabled`)
                      }
                    >
                      Disable
                    </button>
                  )}
                  <button
                    type="button"
                    className="btn btn-sm"
                    onClick={() =>
                      run(
                        { kind: 'role', id: user.id, role: user.role === 'admin' ? 'user' : 'admin' },
                        user.role === 'admin' ? `${who} is now a user` : `${who} is now an admin`,
                      )
                    }
                  >
                    {user.role === 'admin' ? 'Demote' : 'Promote'}
                  </button>
                  {!user.provider || user.provider === 'local' ? (
                    <button type="button" className="btn btn-sm" onClick={() => setResetFor(user)}>
                      Reset password
                    </button>
                  ) : null}
                  <button
                    type="button"
                    className="btn btn-sm btn-ghost"
                    aria-label={`Delete ${who}`}
                    onClick={() =>
                      setConfirm({
                        title: 'Delete user',
                        message: `Delete ${who}? This will also remove their sessions and API keys. Their usage history is kept.`,
                        label: 'Delete',
                        action: { kind: 'delete', id: user.id },
                      })
                    }
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
    [me.id, keysFor, setQuery, run],
  );

  const list = users.data ?? [];
  const needle = search.trim().toLowerCase();
  const shown = needle
    ? list.filter((u) => u.name.toLowerCase().includes(needle) || u.email.toLowerCase().includes(needle))
    : list;
  const keysUser = list.find((u) => u.id === keysFor);

  return (
    <div className="stack">
      <section className="card">
        <div className="table-tools">
          <div className="search">
            <Search size={15} aria-hidden="true" />
            <label htmlFor="users-search" className="sr-only">
              Search users
            </label>
            <input
              id="users-search"
              type="search"
              className="input"
              placeholder="Search by name or email"
              value={search}
              onChange={(e) => setQuery({ q: e.target.value })}
            />
          </div>
          <span className="spacer" />
          <span className="small muted">
            {list.length} user{list.length === 1 ? '' : 's'}
            {list.some((u) => u.status === 'pending')
              ? ` · ${list.filter((u) => u.status === 'pending').length} waiting for approval`
              : ''}
          </span>
        </div>
        {users.isPending ? <Loading /> : null}
        {users.isError ? <ErrorState error={users.error} onRetry={() => users.refetch()} /> : null}
        {users.data && shown.length === 0 ? (
          <Empty title="No users match">Try another name or email.</Empty>
        ) : null}
        {shown.length > 0 ? (
          <DataTable
            data={shown}
            columns={columns}
            caption="Users"
            rowProps={(row) => ({ 'data-testid': 'admin-user-row', 'data-user-id': row.original.id })}
          />
        ) : null}
      </section>
      {keysUser ? <UserKeys user={keysUser} onClose={() => setQuery({ keys: null })} /> : null}
      <ConfirmDialog
        open={confirm !== null}
        title={confirm?.title ?? ''}
        message={confirm?.message ?? ''}
        confirmLabel={confirm?.label ?? 'Confirm'}
        onCancel={() => setConfirm(null)}
        onConfirm={() => {
          if (confirm) run(confirm.action, 'User deleted');
          setConfirm(null);
        }}
      />
      <PermissionsDialog user={permissionsFor} onClose={() => setPermissionsFor(null)} />
      <ResetPasswordDialog
        user={resetFor}
        onClose={() => setResetFor(null)}
        onSubmit={(password) => {
          if (resetFor) run({ kind: 'password', id: resetFor.id, password }, 'Password reset');
          setResetFor(null);
        }}
      />
    </div>
  );
}

function ResetPasswordDialog({
  user,
  onClose,
  onSubmit,
}: {
  user: AdminUser | null;
  onClose: () => void;
  onSubmit: (password: string) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [password, setPassword] = useState('');
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (user && !dialog.open) {
      setPassword('');
      dialog.showModal();
    }
    if (!user && dialog.open) dialog.close();
  }, [user]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (password) onSubmit(password);
  };
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="reset-title" onClose={onClose} onCancel={onClose}>
      <form className="form" onSubmit={submit}>
        <h2 id="reset-title">Reset password for {user?.name || user?.email}</h2>
        <div className="field">
          <label htmlFor="reset-password">New password</label>
          <input
            id="reset-password"
            type="password"
            className="input"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <span className="hint">Their current sessions are signed out.</span>
        </div>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={!password}>
            Reset password
          </button>
        </div>
      </form>
    </dialog>
  );
}

function UserKeys({ user, onClose }: { user: AdminUser; onClose: () => void }) {
  const keys = useAdminApiKeys(user.id);
  const revoke = useAdminRevokeApiKey(user.id);
  const update = useAdminUpdateApiKey(user.id);
  const actions = useMemo<ApiKeyActions>(
    () => ({
      update: (id, body) => update.mutateAsync({ id, body }),
      revoke: (id) => revoke.mutateAsync(id),
    }),
    [update.mutateAsync, revoke.mutateAsync],
  );
  const who = user.name || user.email;
  return (
    <section className="card" aria-labelledby="user-keys-title">
      <div className="card-head">
        <h2 id="user-keys-title">API keys of {who}</h2>
        <button
          type="button"
          className="btn btn-sm btn-ghost btn-icon"
          onClick={onClose}
          aria-label="Close keys"
        >
          <X size={15} aria-hidden="true" />
        </button>
      </div>
      {keys.isPending ? <Loading /> : null}
      {keys.isError ? <ErrorState error={keys.error} onRetry={() => keys.refetch()} /> : null}
      {keys.data && keys.data.length === 0 ? (
        <Empty title="No API keys">This user has not created any key.</Empty>
      ) : null}
      {keys.data && keys.data.length > 0 ? (
        <ApiKeyList
          keys={keys.data}
          caption={`API keys of ${who}`}
          owner={who}
          isAdmin={user.role === 'admin'}
          actions={actions}
        />
      ) : null}
    </section>
  );
}

function InvitesTab() {
  const invites = useInvites();
  const create = useCreateInvite();
  const remove = useDeleteInvite();
  const notify = useToast();
  const [hours, setHours] = useState('168');
  const [code, setCode] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(Number(hours), {
      onSuccess: (invite) => {
        setCode(invite.code);
        notify('Invite created');
      },
    });
  };
  const prefixOf = (invite: Invite) => invite.codePrefix;
  return (
    <div className="stack">
      <section className="card">
        <form className="row" onSubmit={submit} style={{ alignItems: 'flex-end', gap: 12 }}>
          <div className="field">
            <label htmlFor="invite-hours">Valid for</label>
            <select
              id="invite-hours"
              className="select"
              value={hours}
              onChange={(e) => setHours(e.target.value)}
            >
              <option value="24">1 day</option>
              <option value="168">7 days</option>
              <option value="720">30 days</option>
            </select>
          </div>
          <button type="submit" className="btn btn-primary" disabled={create.isPending}>
            <Plus size={15} aria-hidden="true" />
            Create invite
          </button>
        </form>
        {create.isError ? (
          <div style={{ marginTop: 12 }}>
            <InlineError error={create.error} />
          </div>
        ) : null}
        {code ? (
          <div
            className="alert alert-warning"
            role="status"
            style={{ marginTop: 16, flexDirection: 'column' }}
          >
            <strong>Copy this invite code now — it won't be shown again</strong>
            <div className="secret" style={{ width: '100%' }}>
              <code>{code}</code>
              <CopyButton text={code} />
            </div>
          </div>
        ) : null}
      </section>
      <section className="card">
        <div className="card-head">
          <h2>Invites</h2>
        </div>
        {invites.isPending ? <Loading /> : null}
        {invites.isError ? <ErrorState error={invites.error} onRetry={() => invites.refetch()} /> : null}
        {invites.data && invites.data.length === 0 ? <Empty title="No invites yet" /> : null}
        {invites.data && invites.data.length > 0 ? (
          <div className="table-wrap">
            <table className="table">
              <caption className="sr-only">Invites</caption>
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {invites.data.map((invite) => (
                  <tr key={invite.id}>
                    <td>
                      <code>{prefixOf(invite)}…</code>
                    </td>
                    <td className="nowrap">{formatDate(invite.createdAt)}</td>
                    <td className="nowrap">{formatDate(invite.expiresAt)}</td>
                    <td>
                      {invite.usedAt || invite.usedBy ? (
                        <span className="badge">used</span>
                      ) : (
                        <span className="badge badge-success">open</span>
                      )}
                    </td>
                    <td className="num">
                      {invite.usedAt || invite.usedBy ? null : (
                        <button
                          type="button"
                          className="btn btn-sm btn-ghost"
                          aria-label={`Delete invite ${prefixOf(invite)}`}
                          onClick={() =>
                            remove.mutate(invite.id, { onSuccess: () => notify('Invite deleted') })
                          }
                        >
                          <Trash2 size={14} aria-hidden="true" />
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
    </div>
  );
}
