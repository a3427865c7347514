import { type ReactElement, useEffect } from 'react';
import { Layout } from './components/Layout.tsx';
import { ErrorState, Loading } from './components/States.tsx';
import { useAuthStatus } from './hooks/useAuthStatus.ts';
import { AccountPage } from './pages/AccountPage.tsx';
import { ChatPage } from './pages/ChatPage.tsx';
import { LoginPage } from './pages/LoginPage.tsx';
import { UsagePage } from './pages/UsagePage.tsx';
import { UsersPage } from './pages/UsersPage.tsx';
import { navigate, useLocation } from './router.ts';

// Pages live under /app/ (as in LocalAI): /usage and /chat/ are API paths of the gateway.
const TITLES: Record<string, string> = {
  '/app/usage': 'Usage',
  '/app/chat': 'Chat',
  '/app/account': 'API keys & account',
  '/app/users': 'Users',
  '/login': 'Sign in',
};

export function App() {
  const status = useAuthStatus();
  const { path } = useLocation();
  const user = status.data?.user ?? null;
  const signedIn = Boolean(user);

  useEffect(() => {
    if (!status.data) return;
    if (!signedIn && path !== '/login') navigate('/login', { replace: true });
    if (signedIn && !path.startsWith('/app/')) navigate('/app/usage', { replace: true });
  }, [status.data, signedIn, path]);

  useEffect(() => {
    document.title = `${TITLES[path] ?? 'keytally'} · keytally`;
  }, [path]);

  if (status.isPending) return <Loading label="Starting keytally…" />;
  if (status.isError) return <ErrorState error={status.error} onRetry={() => status.refetch()} />;
  if (!user) return <LoginPage status={status.data} />;

  let page: ReactElement;
  if (path.startsWith('/app/chat')) page = <ChatPage />;
  else if (path.startsWith('/app/account')) page = <AccountPage user={user} />;
  else if (path.startsWith('/app/users') && user.role === 'admin') page = <UsersPage me={user} />;
  else page = <UsagePage user={user} />;
  return <Layout user={user}>{page}</Layout>;
}
