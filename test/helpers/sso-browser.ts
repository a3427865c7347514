/**
 * A minimal browser for the single sign-on integration tests: follows redirects by hand with one
 * cookie jar per host (like a browser, so the state cookie keytally sets comes back to it) and
 * submits the in-process OpenID provider's login form for a named test user.
 */
export class SsoBrowser {
  private readonly jar = new Map<string, Map<string, string>>();
  /** The keytally callback URL of the last sign-in (to replay it). */
  lastCallback: string | undefined;

  constructor(readonly keytallyOrigin: string) {}

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  setCookie(host: string, name: string, value: string): void {
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    cookies.set(name, value);
    this.jar.set(host, cookies);
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const cookies = this.jar.get(target.host) ?? new Map<string, string>();
    const header = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(target, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(header ? { cookie: header } : {}) },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((attribute) => /^\s*max-age=(-\d+|0)\s*$/i.test(attribute));
      if (expired || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    this.jar.set(target.host, cookies);
    return response;
  }

  /**
   * Follows `startUrl` through the provider (submitting its login form as `login` when asked) back
   * to keytally; returns keytally's final page (path + query), e.g. `/app/usage` or `/login?error=…`.
   */
  async signIn(startUrl: string, login?: string): Promise<string> {
    let url = new URL(startUrl, this.keytallyOrigin).href;
    for (let hop = 0; hop < 20; hop++) {
      const here = new URL(url);
      if (here.origin === this.keytallyOrigin && !here.pathname.startsWith('/api/')) {
        return here.pathname + here.search;
      }
      if (here.origin === this.keytallyOrigin && here.pathname.endsWith('/callback')) this.lastCallback = url;
      const response = await this.request(url);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        url = new URL(location, url).href;
        continue;
      }
      const html = await response.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      if (response.status !== 200 || !action || login === undefined) {
        throw new Error(`sign-in stopped at ${url}: HTTP ${response.status} ${html.slice(0, 200)}`);
      }
      // The provider's login form (login + password) or its consent form (hidden fields only).
      const fields = new URLSearchParams();
      for (const match of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
        fields.set(match[1] ?? '', match[2] ?? '');
      }
      if (/name="login"/.test(html)) {
        fields.set('login', login);
        fields.set('password', 'any password');
      }
      const submitted = await this.request(new URL(action.replaceAll('&amp;', '&'), url).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: fields.toString(),
      });
      const next = submitted.headers.get('location');
      if (!next) throw new Error(`login form at ${url} answered HTTP ${submitted.status}`);
      url = new URL(next, url).href;
    }
    throw new Error(`sign-in did not come back to keytally from ${startUrl}`);
  }

  /** A call to keytally's API with this browser's cookies. */
  async api<T = unknown>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
    const response = await this.request(`${this.keytallyOrigin}${path}`, init);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }
}
