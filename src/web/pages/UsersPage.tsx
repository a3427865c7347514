import type { SessionUser } from '../api.ts';
import { KeyPolicyCard } from '../components/limits/KeyPolicyCard.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { useQueryState } from '../router.ts';
import { InvitesTab } from './users/InvitesTab.tsx';
import { UsersTable } from './users/UsersTable.tsx';

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
      {tab === 'users' ? <KeyPolicyCard /> : null}
    </>
  );
}
