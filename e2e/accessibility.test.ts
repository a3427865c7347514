import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../test/helpers/process.ts';
import { demoContext, PAGES, startDemoServer, VIEWPORTS } from './demo.ts';
import { launchBrowser, type Server } from './helpers.ts';

/**
 * axe-core injected into every page, light and dark, on seed-demo data: no serious or critical
 * violation (contrast, names, roles, keyboard traps).
 */
const AXE = fs.readFileSync(path.join(REPO_ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

async function seriousViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: { run: (ctx: Document, opts: object) => Promise<{ violations: Violation[] }> };
      }
    ).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

describe('accessibility (axe-core)', { timeout: 120_000 }, () => {
  let server: Server & { sessionCookie: string };
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDemoServer(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('a tab list is one Tab stop (arrow keys move inside it): the sign-in modes', async () => {
    const context = await demoContext(browser, server, VIEWPORTS.desktop, 'light', false);
    const page = await context.newPage();
    await page.goto('/login');
    await page.getByRole('tab', { name: 'Sign in' }).waitFor();
    const tabs = page.getByRole('tab');
    expect(await tabs.count()).toBe(3);
    await page.getByRole('tab', { name: 'Sign in' }).focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('role'))).not.toBe('tab');
    await page.getByRole('tab', { name: 'Sign in' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Register' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.getByRole('tab', { name: 'Register' }).getAttribute('tabindex')).toBe('0');
    expect(await page.getByRole('tab', { name: 'Sign in' }).getAttribute('tabindex')).toBe('-1');
    await context.close();
  });

  for (const theme of ['light', 'dark'] as const) {
    it(`every page in the ${theme} theme has no serious or critical violation`, async () => {
      const found: string[] = [];
      for (const target of PAGES) {
        const context = await demoContext(browser, server, VIEWPORTS.desktop, theme, !('public' in target));
        const page = await context.newPage();
        await page.goto(target.path);
        await page.locator(target.ready).first().waitFor();
        for (const violation of await seriousViolations(page)) found.push(`${target.name}: ${violation}`);
        await context.close();
      }
      expect(found).toEqual([]);
    });
  }
});
