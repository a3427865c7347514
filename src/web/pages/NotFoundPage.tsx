import { Compass } from 'lucide-react';
import { Link } from '../components/Link.tsx';

/** An /app/… address that names no page (a mistyped or stale link): say so instead of showing Usage. */
export function NotFoundPage({ path }: { path: string }) {
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Page not found</h1>
          <p>
            There is no page at <code>{path}</code>.
          </p>
        </div>
      </div>
      <div className="state">
        <Compass size={28} aria-hidden="true" />
        <p>
          Go to <Link href="/app/usage">Usage</Link> or <Link href="/app/account">API keys</Link>.
        </p>
      </div>
    </>
  );
}
