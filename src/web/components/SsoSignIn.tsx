import { useQueryClient } from '@tanstack/react-query';
import { AlertTriangle, LogIn } from 'lucide-react';
import { useState } from 'react';
import { type AuthStatus, api } from '../api.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useFormSubmit } from '../hooks/useFormSubmit.ts';
import { usePendingLink } from '../hooks/useIdentities.ts';
import { navigate } from '../router.ts';
import { InlineError } from './States.tsx';

/**
 * The single sign-on half of the login page: a button per ready provider, the invite code new
 * accounts may need, the message for a failed attempt (`/login?error=…`), and the link form a
 * provider sign-in lands on when its verified email belongs to a local account (`/login?link=…`).
 */

const ERROR_MESSAGES: Record<string, string> = {
  invite_required: 'A valid invite code is required to create an account. Enter it below and sign in again.',
  invalid_invite: 'That invite code is unknown, already used or expired.',
  pending_approval: 'Your account is waiting for an administrator to approve it.',
  account_disabled: 'Your account is disabled. Ask an administrator.',
  provider_error:
    'The sign-in provider did not confirm who you are. Try again; if it keeps failing, ask an administrator to check the server log.',
  provider_unavailable: 'The sign-in provider cannot be reached right now. Try again in a minute.',
  state_mismatch: 'That sign-in attempt expired or did not start in this browser. Start again.',
  access_denied: 'Sign-in was cancelled at the provider.',
  rate_limited: 'Too many sign-in attempts from your address. Wait a minute and try again.',
};

export function ssoErrorMessage(code: string | null): string | null {
  if (!code) return null;
  return ERROR_MESSAGES[code] ?? 'Sign-in failed. Try again.';
}

export function SsoError({ code }: { code: string | null }) {
  const message = ssoErrorMessage(code);
  if (!message) return null;
  return (
    <div className="alert alert-danger" role="alert" data-testid="sso-error" style={{ marginBottom: 12 }}>
      <AlertTriangle size={16} aria-hidden="true" />
      <span>{message}</span>
    </div>
  );
}

export function SsoButtons({ status, initialInvite }: { status: AuthStatus; initialInvite: string }) {
  const [invite, setInvite] = useState(initialInvite);
  if (status.sso.length === 0) return null;
  // Invites are honoured in approval mode too (they skip the wait), so the field shows there as well.
  const offerInvite = status.registrationMode !== 'open';
  const query = invite.trim() ? `?invite_code=${encodeURIComponent(invite.trim())}` : '';
  const inviteField = offerInvite ? (
    <div className="field">
      <label htmlFor="sso-invite">
        Invite code {status.registrationMode === 'invite' ? '(needed for a new account)' : '(optional)'}
      </label>
      <input
        id="sso-invite"
        className="input mono"
        autoComplete="off"
        value={invite}
        onChange={(event) => setInvite(event.target.value)}
      />
    </div>
  ) : null;
  return (
    <div className="stack" style={{ gap: 10 }}>
      {inviteField}
      {status.sso.map((provider) => (
        <a
          key={provider.id}
          className="btn"
          style={{ justifyContent: 'center', width: '100%' }}
          href={`${provider.loginUrl}${query}`}
          data-testid={`sso-${provider.id}`}
        >
          <LogIn size={16} aria-hidden="true" />
          Sign in with {provider.label}
        </a>
      ))}
    </div>
  );
}

/** `/login?link=<provider>`: the owner of the local account confirms with its password. */
export function LinkForm() {
  const client = useQueryClient();
  const pending = usePendingLink(true);
  const { error, busy, submit } = useFormSubmit(async (data) => {
    await api.linkIdentity(String(data.get('password')));
    await client.invalidateQueries({ queryKey: queryKeys.status });
  });
  const leave = async () => {
    await api.cancelLink().catch(() => {});
    navigate('/login', { replace: true });
  };
  if (pending.isPending) return <p className="muted">Loading…</p>;
  if (pending.isError) {
    return (
      <div className="stack">
        <div className="alert alert-warning" role="status">
          <AlertTriangle size={16} aria-hidden="true" />
          <span>This link request expired. Sign in with your provider again.</span>
        </div>
        <button type="button" className="btn" onClick={leave}>
          Back to sign-in
        </button>
      </div>
    );
  }
  const link = pending.data;
  return (
    <form className="form" onSubmit={submit} data-testid="link-form">
      <p>
        Your {link.label} sign-in (<strong>{link.email}</strong>) matches an existing keytally account. Enter
        that account's password to link them; afterwards either way signs you in to the same account.
      </p>
      <div className="field">
        <label htmlFor="link-password">Password of {link.email}</label>
        <input
          id="link-password"
          name="password"
          type="password"
          className="input"
          autoComplete="current-password"
          required
        />
      </div>
      <InlineError error={error} />
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Linking…' : `Link ${link.label} and sign in`}
      </button>
      <button type="button" className="btn btn-ghost" onClick={leave}>
        Cancel
      </button>
    </form>
  );
}
