import { useQueryClient } from '@tanstack/react-query';
import { CheckCircle2 } from 'lucide-react';
import { type ReactNode, useState } from 'react';
import { ApiError, type AuthStatus, api } from '../api.ts';
import { BrandMark, ThemeToggle } from '../components/Layout.tsx';
import { LinkForm, SsoButtons, SsoError } from '../components/SsoSignIn.tsx';
import { InlineError } from '../components/States.tsx';
import { onTabListKeyDown } from '../components/tablist.ts';
import { queryKeys } from '../hooks/keys.ts';
import { useFormSubmit } from '../hooks/useFormSubmit.ts';
import { useLocation } from '../router.ts';

type Mode = 'login' | 'register' | 'token';

/** True when the server rejected a weak password but lets the user insist (`overridable`). */
function isOverridable(error: unknown): boolean {
  return (
    error instanceof ApiError &&
    typeof error.body === 'object' &&
    error.body !== null &&
    (error.body as { overridable?: unknown }).overridable === true
  );
}

function AuthFrame({ children }: { children: ReactNode }) {
  return (
    <div className="auth-page">
      <div style={{ position: 'fixed', top: 12, right: 12 }}>
        <ThemeToggle />
      </div>
      <div className="card auth-card">
        <div className="brand">
          <BrandMark />
          keytally
        </div>
        {children}
      </div>
    </div>
  );
}

export function LoginPage({ status }: { status: AuthStatus }) {
  const { search } = useLocation();
  const errorCode = search.get('error');
  const invite = search.get('invite_code') ?? '';
  const localAuth = status.providers.includes('local');
  if (search.get('link')) {
    return (
      <AuthFrame>
        <h1>Link your account</h1>
        <LinkForm />
      </AuthFrame>
    );
  }
  if (!localAuth) {
    // KEYTALLY_DISABLE_LOCAL_AUTH: single sign-on buttons only.
    return (
      <AuthFrame>
        <h1>Sign in</h1>
        <p className="lead">
          {status.hasUsers
            ? 'Usage, API keys and chat for your model gateway.'
            : 'No account exists yet: the first person to sign in with a verified email becomes the administrator.'}
        </p>
        <SsoError code={errorCode} />
        {status.sso.length === 0 ? (
          <div className="alert alert-warning" role="status">
            <span>
              Single sign-on is not available right now (its provider cannot be reached). Try again in a
              minute.
            </span>
          </div>
        ) : null}
        <SsoButtons status={status} initialInvite={invite} />
      </AuthFrame>
    );
  }
  return <LocalLogin status={status} errorCode={errorCode} invite={invite} />;
}

function LocalLogin({
  status,
  errorCode,
  invite,
}: {
  status: AuthStatus;
  errorCode: string | null;
  invite: string;
}) {
  const firstRun = !status.hasUsers;
  const [mode, setMode] = useState<Mode>(firstRun ? 'register' : 'login');
  const effective: Mode = firstRun ? 'register' : mode;
  return (
    <AuthFrame>
      <SsoError code={errorCode} />
      {firstRun ? (
        <>
          <h1>Welcome to keytally</h1>
          <p className="lead">No account exists yet. Create the administrator account to get started.</p>
        </>
      ) : (
        <>
          <h1>{effective === 'register' ? 'Create your account' : 'Sign in'}</h1>
          <p className="lead">Usage, API keys and chat for your model gateway.</p>
          <div
            className="segmented"
            role="tablist"
            onKeyDown={onTabListKeyDown}
            aria-label="Sign-in method"
            style={{ marginBottom: 20 }}
          >
            {(
              [
                ['login', 'Sign in'],
                ['register', 'Register'],
                ['token', 'Use a key'],
              ] as const
            ).map(([value, label]) => (
              <button
                key={value}
                type="button"
                role="tab"
                aria-selected={effective === value}
                tabIndex={effective === value ? 0 : -1}
                onClick={() => setMode(value)}
              >
                {label}
              </button>
            ))}
          </div>
        </>
      )}
      {effective === 'login' ? <LoginForm /> : null}
      {effective === 'register' ? <RegisterForm status={status} firstRun={firstRun} /> : null}
      {effective === 'token' ? <TokenForm /> : null}
      {effective !== 'token' && status.sso.length > 0 ? (
        <>
          <div className="muted small" style={{ textAlign: 'center', margin: '16px 0' }}>
            or
          </div>
          <SsoButtons status={status} initialInvite={invite} />
        </>
      ) : null}
    </AuthFrame>
  );
}

function useSignedIn() {
  const client = useQueryClient();
  return () => client.invalidateQueries({ queryKey: queryKeys.status });
}

function LoginForm() {
  const signedIn = useSignedIn();
  const { error, busy, submit } = useFormSubmit(async (data) => {
    await api.login(String(data.get('email')), String(data.get('password')));
    await signedIn();
  });
  return (
    <form className="form" onSubmit={submit}>
      <div className="field">
        <label htmlFor="login-email">Email</label>
        <input id="login-email" name="email" type="email" className="input" autoComplete="email" required />
      </div>
      <div className="field">
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          className="input"
          autoComplete="current-password"
          required
        />
      </div>
      <InlineError error={error} />
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

function RegisterForm({ status, firstRun }: { status: AuthStatus; firstRun: boolean }) {
  const signedIn = useSignedIn();
  const [done, setDone] = useState<string | null>(null);
  const [acknowledge, setAcknowledge] = useState(false);
  const needsInvite = !firstRun && status.registrationMode === 'invite';
  const { error, busy, submit } = useFormSubmit(async (data) => {
    const inviteCode = String(data.get('inviteCode') ?? '').trim();
    const result = await api.register({
      name: String(data.get('name')).trim(),
      email: String(data.get('email')).trim(),
      password: String(data.get('password')),
      ...(inviteCode ? { inviteCode } : {}),
      ...(acknowledge ? { acknowledge_weak_password: true } : {}),
    });
    if (result.user) await signedIn();
    else if (result.pending)
      setDone('Your account was created and is waiting for an administrator to approve it.');
    else setDone(result.message ? `${result.message}. You can now sign in.` : 'Registration processed.');
  });
  if (done) {
    return (
      <div className="alert alert-success" role="status">
        <CheckCircle2 size={18} aria-hidden="true" />
        <span>{done}</span>
      </div>
    );
  }
  return (
    <form className="form" onSubmit={submit}>
      {!firstRun && status.registrationMode === 'approval' ? (
        <p className="hint">New accounts need an administrator's approval before they can sign in.</p>
      ) : null}
      <div className="field">
        <label htmlFor="reg-name">Name</label>
        <input id="reg-name" name="name" className="input" autoComplete="name" required />
      </div>
      <div className="field">
        <label htmlFor="reg-email">Email</label>
        <input id="reg-email" name="email" type="email" className="input" autoComplete="email" required />
      </div>
      <div className="field">
        <label htmlFor="reg-password">Password</label>
        <input
          id="reg-password"
          name="password"
          type="password"
          className="input"
          autoComplete="new-password"
          aria-describedby="reg-password-hint"
          required
        />
        <span id="reg-password-hint" className="hint">
          At least 12 characters; a passphrase works well.
        </span>
      </div>
      {needsInvite ? (
        <div className="field">
          <label htmlFor="reg-invite">Invite code</label>
          <input id="reg-invite" name="inviteCode" className="input mono" autoComplete="off" required />
          <span className="hint">Registration on this server is by invitation. Ask an administrator.</span>
        </div>
      ) : null}
      <InlineError error={error} />
      {isOverridable(error) || acknowledge ? (
        <label className="checkbox">
          <input type="checkbox" checked={acknowledge} onChange={(e) => setAcknowledge(e.target.checked)} />
          <span>I understand this password is weak; use it anyway.</span>
        </label>
      ) : null}
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Creating…' : firstRun ? 'Create admin account' : 'Create account'}
      </button>
    </form>
  );
}

function TokenForm() {
  const signedIn = useSignedIn();
  const { error, busy, submit } = useFormSubmit(async (data) => {
    await api.tokenLogin(String(data.get('token')).trim());
    await signedIn();
  });
  return (
    <form className="form" onSubmit={submit}>
      <div className="field">
        <label htmlFor="token">API key</label>
        <input
          id="token"
          name="token"
          type="password"
          className="input mono"
          autoComplete="off"
          aria-describedby="token-hint"
          required
        />
        <span id="token-hint" className="hint">
          A personal key (kt-…) or a shared legacy key configured on the server.
        </span>
      </div>
      <InlineError error={error} />
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? 'Checking…' : 'Sign in with key'}
      </button>
    </form>
  );
}
