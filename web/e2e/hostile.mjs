// Hostile input in Debian's headless Chromium (playwright-core): the app
// must answer each with a visible message and stay usable — no wasm trap,
// no blank page, no frozen tab.
//
//   node web/e2e/hostile.mjs <site-dir> <artifacts-dir>
//
// 1. a small shared link asking for 80 writes of 64 MiB (5 GiB): refused
//    before it runs, with a message; the playground still works;
// 2. a pasted scenario above the tab's input limit (16 MiB): refused unread;
// 3. an event log above it, pasted for import: refused unread;
// 4. an event log with a key given twice: refused, naming the key.
// After each, a write through the form must still work and the wasm heap
// must have stayed below the tab's budget (256 MiB).

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium, serveSite } from './browser.mjs';

const [siteArg, artifacts] = process.argv.slice(2);
const siteDir = siteArg && path.resolve(siteArg);
if (!siteArg || !artifacts) {
  console.error('usage: node hostile.mjs <site-dir> <artifacts-dir>');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const { server, base } = await serveSite(siteDir);

const { context, close: closeChromium } = await launchChromium('hostile');

const BUDGET = 256 * 1024 * 1024;
let failed = 0;
let n = 0;

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function waitFor(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last === true) return; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function open(url) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  await page.goto(url);
  await page.locator('#grid-canvas').waitFor({ timeout: 20000 });
  return page;
}

async function paste(page, selector, text) {
  await page.$eval(selector, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, text);
}

async function status(page) {
  return page.locator('#status').innerText();
}

// The wasm heap: every WebAssembly.Memory the page made (the module's one).
async function wasmBytes(page) {
  return page.evaluate(() => (globalThis.__pmemlabMemories || []).reduce((a, m) => a + m.buffer.byteLength, 0));
}

// The app is usable: a write through the form dirties a page.
async function stillUsable(page) {
  await page.fill('#write-offset', '0');
  await page.fill('#write-data', 'still here');
  await page.click('#btn-write');
  await waitFor(async () => Number(await page.locator('#counts li[data-state="dirty"] .count').innerText()) >= 1,
    'a dirty page after the write');
  const heap = await wasmBytes(page);
  assert(heap < BUDGET, `wasm memory ${heap} bytes is above the budget`);
  assert(page.errors.length === 0, `page errors: ${page.errors.join('; ')}`);
}

async function test(name, fn) {
  n += 1;
  const t0 = Date.now();
  let page;
  try {
    page = await fn((p) => { page = p; return p; });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    if (page) {
      const shot = path.join(artifacts, `hostile-${String(n).padStart(2, '0')}.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      await page.close().catch(() => {});
    }
  }
}

// Record the wasm memories the page creates (before any script runs).
await context.addInitScript(() => {
  const M = WebAssembly.Memory;
  globalThis.__pmemlabMemories = [];
  const grab = (instance) => {
    for (const v of Object.values(instance.exports || {})) if (v instanceof M) globalThis.__pmemlabMemories.push(v);
  };
  const inst = WebAssembly.instantiate;
  WebAssembly.instantiate = async (...a) => { const r = await inst(...a); grab(r.instance || r); return r; };
  const stream = WebAssembly.instantiateStreaming;
  if (stream) WebAssembly.instantiateStreaming = async (...a) => { const r = await stream(...a); grab(r.instance); return r; };
});

const b64url = (s) => Buffer.from(s).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const write64 = '{"op":"write","device":"a","offset":0,"text":"x","len":"64M"}';
const bigScenario = `{"version":1,"devices":[{"id":"a","mem-path":"a","size":"64M"}],"steps":[${Array(80).fill(write64).join(',')}]}`;

await test('a small link asking for 80 writes of 64 MiB is refused with a message', async (keep) => {
  const link = `${base}#scenario=${b64url(bigScenario)}&step=80&view=expert`;
  assert(link.length < 8192, `the link is ${link.length} bytes`);
  const page = keep(await open(link));
  await waitFor(async () => (await status(page)).includes('above the memory limit of 256 MiB'), 'the refusal');
  assert((await status(page)).includes('the scenario writes 5 GiB in 80 steps'), await status(page));
  await stillUsable(page);
  return page;
});

await test('a pasted scenario above the input limit is refused unread', async (keep) => {
  const page = keep(await open(`${base}#view=expert`));
  const huge = `{"version":1,"name":"${'x'.repeat(17 * 1024 * 1024)}"}`;
  await paste(page, '#io-text', huge);
  await page.click('#btn-import-scenario');
  await waitFor(async () => (await status(page)).includes('above the 16 MiB accepted'), 'the refusal');
  await paste(page, '#io-text', '');
  await stillUsable(page);
  return page;
});

await test('an event log above the input limit is refused unread', async (keep) => {
  const page = keep(await open(`${base}#view=expert`));
  const ev = '{"seq":0,"at":0,"event":"notified"},';
  const huge = `[${ev.repeat(Math.ceil((17 * 1024 * 1024) / ev.length))}{"seq":1,"at":0,"event":"notified"}]`;
  await paste(page, '#io-text', huge);
  await page.click('#btn-import-log');
  await waitFor(async () => (await status(page)).includes('the event log is'), 'the refusal');
  assert((await status(page)).includes('above the 16 MiB accepted'), await status(page));
  await paste(page, '#io-text', '');
  await stillUsable(page);
  return page;
});

await test('an event log with a key given twice is refused, naming it', async (keep) => {
  const page = keep(await open(`${base}#view=expert`));
  await paste(page, '#io-text', '{"events": [], "events": []}');
  await page.click('#btn-import-log');
  await waitFor(async () => (await status(page)).includes('duplicate key "events"'), 'the refusal');
  await stillUsable(page);
  return page;
});

await closeChromium();
server.close();
console.log(`${n - failed} of ${n} hostile-input tests passed`);
process.exit(failed ? 1 : 0);
