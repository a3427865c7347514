import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { type KeytallyProcess, REPO_ROOT, startKeytally } from '../test/helpers/process.ts';
import { findChromium } from './chromium.ts';
import { withFileLock } from './file-lock.ts';

/**
 * Shared plumbing for the browser tests: one headless Chromium and one real keytally (SQLite, demo
 * model, 100 ms usage flush) per test file, HTTP helpers that seed data through the public API, and
 * screenshots under e2e/screenshots/ for a person to look at.
 */

export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'e2e/screenshots');

// What the dashboard build is made from: a change to any of them makes dist/web stale.
const WEB_SOURCES = ['src/web', 'src/shared', 'vite.config.ts'].map((name) => path.join(REPO_ROOT, name));
const WEB_INDEX = path.join(REPO_ROOT, 'dist/web/index.html');

function newestMtime(file: string): number {
  const stat = fs.statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of fs.readdirSync(file)) newest = Math.max(newest, newestMtime(path.join(file, entry)));
  return newest;
}

function webBuildIsFresh(): boolean {
  if (!fs.existsSync(WEB_INDEX)) return false;
  const built = fs.statSync(WEB_INDEX).mtimeMs;
  return WEB_SOURCES.every((source) => newestMtime(source) <= built);
}

/**
 * The server serves dist/web: (re)build it when this checkout has none or its sources changed since
 * (a merge, an edit), so the browser tests never test a stale dashboard. One worker builds; the
 * others wait on the lock and then find it fresh.
 */
export async function ensureWebBuild(): Promise<void> {
  if (webBuildIsFresh()) return;
  fs.mkdirSync(path.join(REPO_ROOT, 'dist'), { recursive: true });
  await withFileLock(path.join(REPO_ROOT, 'dist/.web-build.lock'), () => {
    if (webBuildIsFresh()) return;
    execFileSync(
      process.execPath,
      [path.join(REPO_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'],
      { cwd: REPO_ROOT, stdio: 'inherit' },
    );
  });
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Headless Chromium from e2e/chromium.ts's finder (env, system, then the bundled one). A browser
 * that dies of a signal while starting gets one more try: the bundled build crashed with SIGSEGV at
 * launch once in six full runs of the suite (two cores, every suite at once), and started fine the
 * next time. One that fails twice, or fails any other way, fails the test.
 */
export async function launchBrowser(env: NodeJS.ProcessEnv = process.env): Promise<Browser> {
  const { executablePath } = await findChromium(env);
  // Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
  const launch = () => chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  try {
    return await launch();
  } catch (error) {
    if (!/process did exit: exitCode=null, signal=SIG[A-Z]+/.test(String((error as Error).message)))
      throw error;
    console.error(
      `Chromium crashed while starting; launching it once more: ${(error as Error).message.split('\n')[0]}`,
    );
    return launch();
  }
}

export interface Server {
  proc: KeytallyProcess;
  baseUrl: string;
  dataDir: string;
  dbFile: string;
  stop(): Promise<void>;
}

export async function startServer(env: Record<string, string> = {}): Promise<Server> {
  await ensureWebBuild();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-e2e-'));
  const proc = await startKeytally({
    KEYTALLY_DATA_DIR: dataDir,
    KEYTALLY_USAGE_FLUSH_MS: '100',
    KEYTALLY_REGISTRATION_MODE: 'open',
    KEYTALLY_LOG_LEVEL: 'warn',
    ...env,
  });
  return {
    proc,
    baseUrl: proc.baseUrl,
    dataDir,
    dbFile: path.join(dataDir, 'keytally.db'),
    async stop() {
      await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function newPage(
  browser: Browser,
  server: Server,
  viewport = { width: 1280, height: 860 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    baseURL: server.baseUrl,
    viewport,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  return { context, page };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** True when the document is wider than the viewport (a horizontal scrollbar). */
export async function hasHorizontalScroll(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
}

/** A signed-in HTTP client for seeding: keeps the session cookie like a browser would. */
export class ApiClient {
  cookie = '';
  constructor(readonly baseUrl: string) {}

  async call<T>(
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await fetch(`${this.baseUrl}${url}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = response.headers.getSetCookie();
    for (const entry of setCookie) {
      const pair = entry.split(';')[0] ?? '';
      if (pair.startsWith('session=')) this.cookie = pair;
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${url} → ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  static async register(
    baseUrl: string,
    email: string,
    name: string,
    password = PASSWORD,
  ): Promise<ApiClient> {
    const client = new ApiClient(baseUrl);
    await client.call('POST', '/api/auth/register', {
      email,
      name,
      password,
      acknowledge_weak_password: true,
    });
    if (!client.cookie) await client.call('POST', '/api/auth/login', { email, password });
    return client;
  }

  async me(): Promise<{ id: string; name: string }> {
    return this.call('GET', '/api/auth/me');
  }

  async createKey(name: string): Promise<{ id: string; key: string; keyPrefix: string }> {
    return this.call('POST', '/api/auth/api-keys', { name });
  }

  /** A streamed chat through the session cookie: `web` traffic. */
  async chat(content: string): Promise<void> {
    await chatWith(this.baseUrl, { cookie: this.cookie }, content);
  }
}

export const PASSWORD = 'correct horse battery staple 42';

/** One chat completion with the demo model; returns the HTTP status. */
export async function chatWith(
  baseUrl: string,
  headers: Record<string, string>,
  content: string,
): Promise<{ status: number; totalTokens: number }> {
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
  });
  const text = await response.text();
  if (!response.ok) return { status: response.status, totalTokens: 0 };
  const body = JSON.parse(text) as { usage?: { total_tokens?: number } };
  return { status: response.status, totalTokens: body.usage?.total_tokens ?? 0 };
}

/** Polls an async predicate until it holds (usage reaches the database within one flush). */
export async function waitFor<T>(
  fn: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await fn();
  while (!ok(value)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await fn();
  }
  return value;
}
