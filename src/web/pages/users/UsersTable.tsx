import { createColumnHelper } from '@tanstack/react-table';
import { KeyRound, Search, ShieldCheck, Trash2 } from 'lucide-react';
import { useCallback, useMemo, useState } from 'react';
import type { AdminUser, SessionUser } from '../../api.ts';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { DataTable } from '../../components/DataTable.tsx';
import { QuotaRulesDialog } from '../../components/limits/QuotaRulesDialog.tsx';
import { Empty, ErrorState, Loading } from '../../components/States.tsx';
import { useToast } from '../../components/Toast.tsx';
import { formatDate } from '../../format.ts';
import { type UserAction, useAdminUsers, useUserAction } from '../../hooks/useAdminUsers.ts';
import { useQueryState } from '../../router.ts';
import { PermissionsDialog, permissionSummary } from './PermissionsDialog.tsx';
import { ResetPasswordDialog } from './ResetPasswordDialog.tsx';
import { UserKeys } from './UserKeys.tsx';

const STATUS_BADGE: Record<AdminUser['status'], string> = {
  active: 'badge badge-success',
  pending: 'badge badge-warning',
  disabled: 'badge badge-danger',
};

const column = createColumnHelper<AdminUser>();

type Confirm = { title: string; message: string; label: string; action: UserAction } | null;

export function UsersTable({ me }: { me: SessionUser }) {
  const users = useAdminUsers();
  const act = useUserAction();
  const notify = useToast();
  const [query, setQuery] = useQueryState();
  const search = query.get('q') ?? '';
  const keysFor = query.get('keys');
  const [confirm, setConfirm] = useState<Confirm>(null);
  const [resetFor, setResetFor] = useState<AdminUser | null>(null);
  const [quotasFor, setQuotasFor] = useState<AdminUser | null>(null);
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
              <button
                type="button"
                className="btn btn-sm"
                onClick={() => setQuotasFor(user)}
                aria-label={`Quotas of ${who}`}
              >
                Quotas
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
      <QuotaRulesDialog user={quotasFor} onClose={() => setQuotasFor(null)} />
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
