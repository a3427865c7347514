import { useCallback, useSyncExternalStore } from 'react';

/**
 * A tiny router on the history API: the path picks the page, the query string holds view state
 * (period, tab, selection, search, sort) so it survives refreshes and can be shared as a link.
 */

const NAVIGATE_EVENT = 'keytally:navigate';

function subscribe(callback: () => void): () => void {
  window.addEventListener('popstate', callback);
  window.addEventListener(NAVIGATE_EVENT, callback);
  return () => {
    window.removeEventListener('popstate', callback);
    window.removeEventListener(NAVIGATE_EVENT, callback);
  };
}

const snapshot = () => window.location.pathname + window.location.search;

/** Last query string seen per page, so the main navigation returns to the view you left. */
const lastSearch = new Map<string, string>();

export function hrefWithLastSearch(path: string): string {
  return `${path}${lastSearch.get(path) ?? ''}`;
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new Event(NAVIGATE_EVENT));
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(href, window.location.origin);
  lastSearch.set(url.pathname, url.search);
  return { path: url.pathname, search: url.searchParams };
}

/** Reads and writes query-string parameters of the current page (replacing history entries). */
export function useQueryState(): [URLSearchParams, (patch: Record<string, string | null>) => void] {
  const { search } = useLocation();
  const update = useCallback((patch: Record<string, string | null>) => {
    const params = new URLSearchParams(window.location.search);
    for (const [key, value] of Object.entries(patch)) {
      if (value === null || value === '') params.delete(key);
      else params.set(key, value);
    }
    const query = params.toString();
    navigate(`${window.location.pathname}${query ? `?${query}` : ''}`, { replace: true });
  }, []);
  return [search, update];
}
