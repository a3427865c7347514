import { useQueryClient } from '@tanstack/react-query';
import { BarChart3, CircleDollarSign, KeyRound, LogOut, MessageSquare, Moon, Sun, Users } from 'lucide-react';
import { type ReactNode, useEffect } from 'react';
import { api, type SessionUser } from '../api.ts';
import { queryKeys } from '../hooks/keys.ts';
import { hrefWithLastSearch, navigate, useLocation } from '../router.ts';
import { useTheme } from '../theme.ts';
import { Link } from './Link.tsx';

export function ThemeToggle() {
  const { resolved, toggle } = useTheme();
  const next = resolved === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="btn btn-icon btn-ghost"
      onClick={toggle}
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
    >
      {resolved === 'dark' ? <Sun size={17} aria-hidden="true" /> : <Moon size={17} aria-hidden="true" />}
    </button>
  );
}

export function BrandMark() {
  return (
    <span className="brand-mark" aria-hidden="true">
      <KeyRound size={16} strokeWidth={2.4} />
    </span>
  );
}

const NAV = [
  { href: '/app/usage', label: 'Usage', icon: BarChart3, admin: false },
  { href: '/app/chat', label: 'Chat', icon: MessageSquare, admin: false },
  { href: '/app/account', label: 'API keys', icon: KeyRound, admin: false },
  { href: '/app/users', label: 'Users', icon: Users, admin: true },
  { href: '/app/prices', label: 'Prices', icon: CircleDollarSign, admin: true },
];

export function Layout({ user, children }: { user: SessionUser; children: ReactNode }) {
  const { path } = useLocation();
  const client = useQueryClient();
  const logout = async () => {
    try {
      await api.logout();
    } finally {
      client.clear();
      await client.invalidateQueries({ queryKey: queryKeys.status });
      navigate('/login', { replace: true });
    }
  };
  // Screen readers: a client-side page change moves focus to the new page, as a full load would.
  useEffect(() => {
    if (path) document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);
  const initial = (user.name || user.email || '?').slice(0, 1).toUpperCase();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <Link href="/app/usage" className="brand">
          <BrandMark />
          keytally
        </Link>
        <nav className="nav" aria-label="Main">
          {NAV.filter((item) => !item.admin || user.role === 'admin').map((item) => (
            <Link
              key={item.href}
              href={path.startsWith(item.href) ? item.href : hrefWithLastSearch(item.href)}
              aria-current={path.startsWith(item.href) ? 'page' : undefined}
            >
              <item.icon size={17} aria-hidden="true" />
              {item.label}
            </Link>
          ))}
        </nav>
        <div className="sidebar-foot">
          <div className="user-chip">
            <span className="avatar" aria-hidden="true">
              {initial}
            </span>
            <span className="who">
              <strong>{user.name || user.email}</strong>
              <span>
                {user.email} · {user.role}
              </span>
            </span>
          </div>
          <div className="sidebar-actions">
            <ThemeToggle />
            <button type="button" className="btn btn-ghost" onClick={logout} aria-label="Sign out">
              <LogOut size={16} aria-hidden="true" />
              <span className="hide-mobile">Sign out</span>
            </button>
          </div>
        </div>
      </aside>
      <main id="main" className="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
