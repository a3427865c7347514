import type { SessionUser } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { useIdentities } from '../hooks/useIdentities.ts';
import { InlineError } from './States.tsx';

/** Account → Security: how this account signs in (password, linked single sign-on identities). */
export function SignInMethods({ user }: { user: SessionUser }) {
  const identities = useIdentities();
  return (
    <section
      className="card"
      style={{ maxWidth: 560, marginBottom: 16 }}
      aria-labelledby="sign-in-methods-title"
    >
      <h2 id="sign-in-methods-title">Sign-in methods</h2>
      <ul
        className="stack"
        style={{ listStyle: 'none', padding: 0, margin: 0 }}
        data-testid="sign-in-methods"
      >
        {user.provider === 'local' ? (
          <li>
            <strong>Password</strong> <span className="muted">{user.email}</span>
          </li>
        ) : null}
        {(identities.data ?? []).map((identity) => (
          <li key={identity.id}>
            <strong>{identity.label}</strong>{' '}
            <span className="muted">{identity.email || 'no verified email'}</span>
            <div className="hint">
              linked {formatDateTime(identity.createdAt)} · last sign-in{' '}
              {formatDateTime(identity.lastLoginAt)}
            </div>
          </li>
        ))}
      </ul>
      <InlineError error={identities.error} />
    </section>
  );
}
