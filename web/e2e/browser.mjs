// What every browser script here shares: the built site served on
// 127.0.0.1 and Debian's headless Chromium driven by playwright-core
// (which never downloads a browser here).

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' };

// Serves `siteDir` on 127.0.0.1 (a free port); a directory serves its
// index.html, a path outside the site is refused. Returns the server and
// its base URL (ending in '/').
export async function serveSite(siteDir) {
  const root = path.resolve(siteDir);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      res.end(data);
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, base: `http://127.0.0.1:${server.address().port}/` };
}

// Launches Debian's Chromium headless in a fresh profile (a temporary
// directory named after `name`). Returns the browser context and `close`,
// which closes it and removes the profile.
export async function launchChromium(name, viewport = { width: 1400, height: 1000 }) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pmemlab-${name}-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}
