import { findChromium } from './chromium.ts';
import { launchBrowser } from './helpers.ts';

/**
 * `node --import tsx e2e/launch-check.ts <url>`: finds a Chromium the way the browser tests do,
 * opens <url> and prints one JSON line (which browser, the page's first heading). e2e/chromium.test.ts
 * runs it with a fresh TMPDIR and KEYTALLY_CHROMIUM_SKIP_SYSTEM=1: a machine that never unpacked one.
 */
const url = process.argv[2];
if (!url) throw new Error('usage: launch-check.ts <url>');
const found = await findChromium();
const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await page.goto(url);
  const heading = await page.getByRole('heading', { level: 1 }).first().textContent({ timeout: 15_000 });
  console.log(JSON.stringify({ ...found, version: browser.version(), heading }));
} finally {
  await browser.close();
}
