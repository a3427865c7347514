import { type ReactElement, useEffect } from 'react';
import { Layout } from './components/Layout.tsx';
import { ErrorState, Loading } from './components/States.tsx';
import { useAuthStatus } from './hooks/useAuthStatus.ts';
import { AccountPage } from './pages/AccountPage.tsx';
import { ChatPage } from './pages/ChatPage.tsx';
import { LoginPage } from './pages/LoginPage.tsx';
import { NotFoundPage } from './pages/NotFoundPage.tsx';
import { PricesPage } from './pages/PricesPage.tsx';
import { UsagePage } from './pages/UsagePage.tsx';
import { UsersPage } from './pages/UsersPage.tsx';
import { navigate, useLocation } from './router.ts';

// Pages live under /app/ (as in LocalAI): /usage and /chat/ are API paths of the gateway.
const TITLES: Record<string, string> = {
  '/app/usage': 'Usage',
  '/app/chat': 'Chat',
  '/app/account': 'API keys & account',
  '/app/users': 'Users',
  '/app/prices': 'Prices',
  '/login': 'Sign in',
};

function isKnownPage(path: string): boolean {
  return Object.keys(TITLES).some(
    (page) => page !== '/login' && (path === page || path.startsWith(`${page}/`)),
  );
}

export function App() {
  const status = useAuthStatus();
  const { path } = useLocation();
  const user = status.data?.user ?? null;
  const signedIn = Boolean(user);

  useEffect(() => {
    if (!status.data) return;
    const here = window.location.pathname + window.location.search;
    if (!signedIn) {
      // A deep link (a shared usage view, say) survives signing in.
      if (path !== '/login')
        navigate(path.startsWith('/app/') ? `/login?next=${encodeURIComponent(here)}` : '/login', {
          replace: true,
        });
      return;
    }
    if (path === '/login') {
      const next = new URLSearchParams(window.location.search).get('next');
      navigate(next?.startsWith('/app/') ? next : '/app/usage', { replace: true });
      return;
    }
    const adminOnly = path.startsWith('/app/users') || path.startsWith('/app/prices');
    const allowed = !adminOnly || user?.role === 'admin';
    // An unknown /app/… path stays put and shows the not-found page; `/` and the like go to Usage.
    if ((!isKnownPage(path) && !path.startsWith('/app/')) || !allowed)
      navigate('/app/usage', { replace: true });
  }, [status.data, signedIn, path, user?.role]);

  useEffect(() => {
    document.title = `${TITLES[path] ?? (isKnownPage(path) ? 'keytally' : 'Page not found')} · keytally`;
  }, [path]);

  if (status.isPending) return <Loading label="Starting keytally…" />;
  if (status.isError) return <ErrorState error={status.error} onRetry={() => status.refetch()} />;
  if (!user) return <LoginPage status={status.data} />;

  let page: ReactElement;
  if (path.startsWith('/app/') && !isKnownPage(path)) page = <NotFoundPage path={path} />;
  else if (path.startsWith('/app/chat')) page = <ChatPage />;
  else if (path.startsWith('/app/account')) page = <AccountPage user={user} />;
  else if (path.startsWith('/app/users') && user.role === 'admin') page = <UsersPage me={user} />;
  else if (path.startsWith('/app/prices') && user.role === 'admin') page = <PricesPage />;
  else page = <UsagePage user={user} />;
  return <Layout user={user}>{page}</Layout>;
}
