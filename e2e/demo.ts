import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { runKeytally, startKeytally } from '../test/helpers/process.ts';
import { ensureWebBuild, type Server } from './helpers.ts';

/**
 * A keytally filled by `keytally seed-demo` (30 days, demo users, a dozen keys, web and legacy
 * traffic), signed in as the demo admin: what the screenshots and the accessibility check look at.
 */

export const DEMO_ADMIN = { email: 'admin@demo.keytally', password: 'a demo password for screenshots' };

/** Every page of the dashboard, signed in unless `public`. */
export const PAGES = [
  { name: 'login', path: '/login', public: true, ready: 'form' },
  { name: 'usage-models', path: '/app/usage', ready: '[data-testid="time-chart"] canvas' },
  { name: 'usage-users', path: '/app/usage?tab=users', ready: '[data-testid="user-usage-row"]' },
  { name: 'usage-sources', path: '/app/usage?tab=sources', ready: '[data-testid="source-chart"] canvas' },
  { name: 'chat', path: '/app/chat', ready: 'main' },
  { name: 'account', path: '/app/account', ready: 'main table, main [role="tabpanel"]' },
  { name: 'users', path: '/app/users', ready: 'main table' },
  { name: 'prices', path: '/app/prices', ready: 'main h1' },
  { name: 'not-found', path: '/app/no-such-page', ready: 'main h1' },
] as const;

export const VIEWPORTS = {
  desktop: { width: 1440, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

export async function startDemoServer(): Promise<Server & { sessionCookie: string }> {
  ensureWebBuild();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-demo-'));
  const seed = runKeytally(['seed-demo', '--admin-password', DEMO_ADMIN.password], {
    KEYTALLY_DATA_DIR: dataDir,
  });
  const code = await seed.exited;
  if (code !== 0) throw new Error(`seed-demo failed (${code}): ${seed.output()}`);
  const proc = await startKeytally({ KEYTALLY_DATA_DIR: dataDir, KEYTALLY_LOG_LEVEL: 'warn' });
  const login = await fetch(`${proc.baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(DEMO_ADMIN),
  });
  const cookie = login.headers
    .getSetCookie()
    .map((entry) => entry.split(';')[0] ?? '')
    .find((pair) => pair.startsWith('session='));
  if (!login.ok || !cookie) throw new Error(`demo login failed: ${login.status}`);
  return {
    proc,
    baseUrl: proc.baseUrl,
    dataDir,
    dbFile: path.join(dataDir, 'keytally.db'),
    sessionCookie: cookie.slice('session='.length),
    async stop() {
      await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A browser context at a viewport and colour scheme, signed in unless `signedIn` is false. */
export async function demoContext(
  browser: Browser,
  server: Server & { sessionCookie: string },
  viewport: { width: number; height: number },
  theme: 'light' | 'dark',
  signedIn = true,
): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport, colorScheme: theme });
  context.setDefaultTimeout(15_000);
  if (signedIn) {
    await context.addCookies([{ name: 'session', value: server.sessionCookie, url: server.baseUrl }]);
  }
  return context;
}
