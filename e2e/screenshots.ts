import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../test/helpers/process.ts';
import { demoContext, PAGES, startDemoServer, VIEWPORTS } from './demo.ts';
import { launchBrowser } from './helpers.ts';

/**
 * `npm run screenshots`: every page of the dashboard with seed-demo data, at 1440x900 and 390x844, in
 * the light and dark themes, into screenshots/ (ignored by git), so anyone can look at the product in
 * a minute.
 */
const OUT = path.join(REPO_ROOT, 'screenshots');

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const [server, browser] = await Promise.all([startDemoServer(), launchBrowser()]);
  try {
    for (const theme of ['light', 'dark'] as const) {
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        for (const page of PAGES) {
          const context = await demoContext(browser, server, viewport, theme, !('public' in page));
          const tab = await context.newPage();
          await tab.goto(page.path);
          await tab.locator(page.ready).first().waitFor();
          const file = path.join(OUT, `${page.name}-${size}-${theme}.png`);
          await tab.screenshot({ path: file, fullPage: true });
          await context.close();
          process.stdout.write(`${path.relative(REPO_ROOT, file)}\n`);
        }
      }
    }
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
