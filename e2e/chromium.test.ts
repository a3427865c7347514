import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../test/helpers/process.ts';
import { findChromium, findSystemChromium } from './chromium.ts';
import { launchBrowser, newPage, type Server, startServer } from './helpers.ts';

const run = promisify(execFile);

/** The browser finder: no browser test is skipped because a machine has no system Chromium. */
describe('chromium finder', { timeout: 90_000 }, () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('skips the system browser when told to and opens the dashboard with the bundled one', async () => {
    const env = { ...process.env, KEYTALLY_CHROMIUM: '', KEYTALLY_CHROMIUM_SKIP_SYSTEM: '1' };
    const found = await findChromium(env);
    expect(found.source).toBe('bundled');
    expect(found.executablePath).not.toBe(findSystemChromium());
    const browser = await launchBrowser(env);
    try {
      const { page } = await newPage(browser, server);
      await page.goto('/');
      await page.getByRole('heading', { name: 'Welcome to keytally' }).waitFor();
    } finally {
      await browser.close();
    }
  });

  it('unpacks the bundled browser on a machine that never did (fresh temp dir) and loads a page', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keytally-fresh-'));
    try {
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'e2e/launch-check.ts'), server.baseUrl],
        {
          cwd: REPO_ROOT,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '/tmp',
            TMPDIR: tmp,
            KEYTALLY_CHROMIUM_SKIP_SYSTEM: '1',
          },
          timeout: 80_000,
        },
      );
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>;
      expect(result.source).toBe('bundled');
      expect(result.executablePath).toBe(path.join(tmp, 'chromium'));
      expect(result.heading).toBe('Welcome to keytally');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('prefers KEYTALLY_CHROMIUM, and names it when it is not an executable', async () => {
    const bundled = await findChromium({ KEYTALLY_CHROMIUM_SKIP_SYSTEM: '1' });
    await expect(findChromium({ KEYTALLY_CHROMIUM: bundled.executablePath })).resolves.toEqual({
      executablePath: bundled.executablePath,
      source: 'env',
    });
    await expect(findChromium({ KEYTALLY_CHROMIUM: '/nonexistent/chromium' })).rejects.toThrow(
      /KEYTALLY_CHROMIUM=\/nonexistent\/chromium/,
    );
  });

  it('uses the system browser when there is one, the bundled one otherwise', async () => {
    const system = findSystemChromium();
    const found = await findChromium({ PATH: process.env.PATH });
    expect(found).toEqual(
      system
        ? { executablePath: system, source: 'system' }
        : { executablePath: found.executablePath, source: 'bundled' },
    );
  });
});
