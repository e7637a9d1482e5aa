// Runs the visualizer's benchmark page (#bench) in Debian's headless
// Chromium and prints its JSON result.
//
//   node web/e2e/bench.mjs <site-dir>

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium, serveSite } from './browser.mjs';

const siteDir = path.resolve(process.argv[2] || 'target/site');
const { server, base } = await serveSite(siteDir);
const { context, close: closeChromium } = await launchChromium('bench', { width: 1000, height: 800 });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
await page.goto(`${base}bench.html`);
await page.locator('#bench-json[data-done="true"]').waitFor({ timeout: 300000 });
const json = JSON.parse(await page.locator('#bench-json').innerText());
json.user_agent = await page.evaluate(() => navigator.userAgent);
await page.screenshot({ path: path.join(path.resolve('target'), 'bench-page.png') });
await closeChromium();
server.close();
if (errors.length) {
  console.error(`page errors: ${errors.join('; ')}`);
  process.exit(1);
}
console.log(JSON.stringify(json));
