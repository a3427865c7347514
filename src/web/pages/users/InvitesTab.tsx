import { Plus, Trash2 } from 'lucide-react';
import { type FormEvent, useState } from 'react';
import type { Invite } from '../../api.ts';
import { CopyButton } from '../../components/CopyButton.tsx';
import { Empty, ErrorState, InlineError, Loading } from '../../components/States.tsx';
import { useToast } from '../../components/Toast.tsx';
import { formatDate } from '../../format.ts';
import { useCreateInvite, useDeleteInvite, useInvites } from '../../hooks/useInvites.ts';

export function InvitesTab() {
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
