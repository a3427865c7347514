/** Path classes of reference section 5. */

const EXEMPT_PREFIXES = ['/api/auth/', '/static/', '/assets/', '/favicon.svg', '/readyz', '/healthz'];

const API_PREFIXES = [
  '/api/',
  '/v1/',
  '/models',
  '/chat/',
  '/completions',
  '/embeddings',
  '/messages',
  '/responses',
  '/usage',
];

export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Paths that never answer 401 from the hook (handlers still see valid credentials). */
export function isExemptPath(path: string): boolean {
  return path === '/api/auth' || EXEMPT_PREFIXES.some((prefix) => path.startsWith(prefix));
}

/** Paths that need a credential; everything else (the dashboard's pages) passes through. */
export function isApiPath(path: string): boolean {
  return path === '/metrics' || API_PREFIXES.some((prefix) => path.startsWith(prefix));
}
