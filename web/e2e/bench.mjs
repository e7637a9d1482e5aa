// Runs the visualizer's benchmark page (#bench) in Debian's headless
// Chromium and prints its JSON result.
//
//   node web/e2e/bench.mjs <site-dir>

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const siteDir = path.resolve(process.argv[2] || 'target/site');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml' };
const server = http.createServer((req, res) => {
  let file = path.join(siteDir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(siteDir)) { res.writeHead(403).end(); return; }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(data);
  });
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmemlab-bench-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1000, height: 800 },
});
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
await page.goto(`http://127.0.0.1:${server.address().port}/bench.html`);
await page.locator('#bench-json[data-done="true"]').waitFor({ timeout: 300000 });
const json = JSON.parse(await page.locator('#bench-json').innerText());
json.user_agent = await page.evaluate(() => navigator.userAgent);
await page.screenshot({ path: path.join(path.resolve('target'), 'bench-page.png') });
await context.close();
server.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
if (errors.length) {
  console.error(`page errors: ${errors.join('; ')}`);
  process.exit(1);
}
console.log(JSON.stringify(json));
