// Delivery of the visualizer by `pmemlab serve`, end to end: the real
// server on 127.0.0.1, raw HTTP and Debian's headless Chromium.
//
//   node web/e2e/delivery.mjs <pmemlab-binary> <site-dir> <artifacts-dir>
//
// - the wasm fetched with `Accept-Encoding: gzip, br` comes compressed
//   (Content-Encoding present) and its transferred bytes are <= 400 KB;
// - the page shows its loading indicator before the app mounts, and the
//   app replaces it (with the wasm delayed so the indicator can be seen);
// - in Chromium the wasm arrives compressed, with Content-Type
//   application/wasm.
// Exits non-zero when a check fails.

import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { launchChromium } from './browser.mjs';

const BUDGET = 400_000; // bytes: the 400 KB budget of the release wasm as sent
const [binary, siteArg, artifacts] = process.argv.slice(2);
if (!binary || !siteArg || !artifacts) {
  console.error('usage: node delivery.mjs <pmemlab-binary> <site-dir> <artifacts-dir>');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const server = spawn(binary, ['serve', '--port', '0', '--dir', siteArg], { stdio: ['ignore', 'pipe', 'inherit'] });
const first = await new Promise((ok, fail) => {
  readline.createInterface({ input: server.stdout }).once('line', ok);
  server.once('exit', (code) => fail(new Error(`pmemlab serve exited with ${code}`)));
});
const base = first.match(/http:\/\/[^/\s]+\//)[0];

// Raw GET: Node's http does not decode, so the body is what was sent.
function get(url, headers) {
  return new Promise((ok, fail) => {
    http.get(url, { headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, bytes: Buffer.concat(chunks).length }));
    }).on('error', fail);
  });
}

const results = [];
let failed = 0;
async function check(name, fn) {
  try {
    const detail = await fn();
    results.push({ name, ok: true, detail });
    console.log(`ok   ${name}${detail ? ` (${detail})` : ''}`);
  } catch (e) {
    failed += 1;
    results.push({ name, ok: false, error: e.message });
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const index = fs.readFileSync(path.join(siteArg, 'index.html'), 'utf8');
const wasmName = index.match(/\.\/([\w.-]+\.wasm)/)[1];

await check('the wasm is sent compressed and within 400 KB', async () => {
  const r = await get(`${base}${wasmName}`, { 'accept-encoding': 'gzip, br' });
  assert(r.status === 200, `status ${r.status}`);
  assert(['br', 'gzip'].includes(r.headers['content-encoding']), `content-encoding ${r.headers['content-encoding']}`);
  assert(r.headers['content-type'] === 'application/wasm', `content-type ${r.headers['content-type']}`);
  assert(r.bytes <= BUDGET, `${r.bytes} bytes sent, budget ${BUDGET}`);
  const gz = await get(`${base}${wasmName}`, { 'accept-encoding': 'gzip' });
  assert(gz.headers['content-encoding'] === 'gzip' && gz.bytes <= BUDGET, `gzip only: ${gz.headers['content-encoding']}, ${gz.bytes} bytes`);
  const plain = await get(`${base}${wasmName}`, {});
  assert(!plain.headers['content-encoding'] && plain.bytes > r.bytes, `uncompressed: ${plain.headers['content-encoding']}, ${plain.bytes} bytes`);
  return `${r.headers['content-encoding']} ${r.bytes} bytes, gzip ${gz.bytes}, uncompressed ${plain.bytes}`;
});

const { context, close: closeChromium } = await launchChromium('delivery');

// First, in the fresh profile: nothing comes from the browser's cache.
await check('Chromium gets the wasm compressed from pmemlab serve', async () => {
  const page = await context.newPage();
  const wasm = page.waitForResponse((r) => r.url().endsWith('.wasm'));
  await page.goto(base);
  const response = await wasm;
  const headers = await response.allHeaders();
  const sizes = await response.request().sizes();
  await page.locator('#grid-canvas').waitFor({ timeout: 30000 });
  await page.screenshot({ path: path.join(artifacts, 'delivery-served.png') });
  await page.close();
  assert(['br', 'gzip'].includes(headers['content-encoding']), `content-encoding ${headers['content-encoding']}`);
  assert(headers['content-type'] === 'application/wasm', `content-type ${headers['content-type']}`);
  assert(sizes.responseBodySize <= BUDGET, `${sizes.responseBodySize} bytes transferred, budget ${BUDGET}`);
  return `${headers['content-encoding']}, ${sizes.responseBodySize} bytes transferred`;
});

await check('a loading indicator shows until the app mounts', async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let release;
  const held = new Promise((ok) => { release = ok; });
  await page.route('**/*.wasm', async (route) => { await held; await route.continue(); });
  await page.goto(base);
  const loading = page.locator('#loading');
  await loading.waitFor({ state: 'visible', timeout: 10000 });
  assert((await loading.innerText()).includes('Loading'), 'indicator text');
  assert((await page.locator('#grid-canvas').count()) === 0, 'app mounted before its wasm arrived');
  await page.screenshot({ path: path.join(artifacts, 'delivery-loading.png') });
  release();
  await page.locator('#grid-canvas').waitFor({ timeout: 30000 });
  await loading.waitFor({ state: 'detached', timeout: 10000 });
  assert(errors.length === 0, `page errors: ${errors.join('; ')}`);
  await page.close();
});

await closeChromium();
server.kill();
fs.writeFileSync(path.join(artifacts, 'delivery-results.json'), JSON.stringify(results, null, 2));
console.log(`${results.length - failed} of ${results.length} delivery tests passed`);
process.exit(failed ? 1 : 0);
