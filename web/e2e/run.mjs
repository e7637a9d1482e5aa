// End-to-end tests of the pmemlab visualizer in Debian's headless Chromium,
// driven by playwright-core (which never downloads a browser here).
//
//   node web/e2e/run.mjs <site-dir> <artifacts-dir> [event-log.json]
//
// Serves the built site on 127.0.0.1 (a free port), runs every test in a
// fresh browser context, keeps a screenshot per test, fails on any page
// error, and exits non-zero when a test fails.

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [siteArg, artifacts, logFile] = process.argv.slice(2);
const siteDir = siteArg && path.resolve(siteArg);
if (!siteArg || !artifacts) {
  console.error('usage: node run.mjs <site-dir> <artifacts-dir> [event-log.json]');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let file = path.join(siteDir, decodeURIComponent(url.pathname));
  if (!file.startsWith(siteDir)) { res.writeHead(403).end(); return; }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(data);
  });
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmemlab-e2e-'));
const context0 = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 1000 },
});

let failed = 0;
let n = 0;
const results = [];

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function count(page, state) {
  return Number(await page.locator(`#counts li[data-state="${state}"] .count`).innerText());
}

async function rowState(page, p) {
  const row = page.locator(`#page-table tr[data-page="${p}"]`);
  if ((await row.count()) === 0) return 'untouched';
  return row.getAttribute('data-state');
}

// Puts text into a field at once, as a paste would (page.fill is slow for
// long texts).
async function paste(page, selector, text) {
  await page.$eval(selector, (el, v) => {
    el.value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, text);
}

async function waitFor(fn, what, ms = 5000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last === true) return; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function open(url) {
  const page = await context0.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  await page.goto(url);
  await page.locator('#grid-canvas').waitFor({ timeout: 20000 });
  return page;
}

async function test(name, fn) {
  n += 1;
  const shot = path.join(artifacts, `${String(n).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
  const t0 = Date.now();
  let page;
  try {
    page = await fn((p) => { page = p; return p; });
    assert(page.errors.length === 0, `page errors: ${page.errors.join('; ')}`);
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    results.push({ name, ok: false, error: e.message });
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    if (page) {
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      await page.close().catch(() => {});
    }
  }
}

let sharedUrl = null;
let sharedState = null;

await test('load the page', async (keep) => {
  const page = keep(await open(base));
  assert((await page.title()).includes('pmemlab'), 'title');
  await waitFor(async () => (await count(page, 'untouched')) === 16384, '16384 untouched pages');
  assert((await page.locator('#position').innerText()) === 'step 0 of 0', 'position');
  assert((await page.locator('#grid-canvas').getAttribute('aria-label')).includes('none written'), 'grid text');
  return page;
});

await test('write, flush, power failure, step back, share', async (keep) => {
  const page = keep(await open(base));
  // Write to page 2 through the form: it turns dirty.
  await page.fill('#write-offset', '8192');
  await page.fill('#write-data', 'hello');
  await page.click('#btn-write');
  await waitFor(async () => (await count(page, 'dirty')) === 1, 'one dirty page');
  assert((await rowState(page, 2)) === 'dirty', 'page 2 dirty');
  await page.screenshot({ path: path.join(artifacts, 'a-dirty.png') });
  // fsync: clean, and the request went through the rings.
  await page.click('#btn-fsync');
  await waitFor(async () => (await count(page, 'clean')) === 1 && (await count(page, 'dirty')) === 0, 'page clean');
  assert((await rowState(page, 2)) === 'clean', 'page 2 clean');
  const stages = await page.locator('#journey li.reached').count();
  assert(stages === 9, `flush journey reached ${stages} of 9 stages`);
  assert((await page.locator('#ring-indices').innerText()).includes('used.idx = 1'), 'used.idx = 1');
  await page.screenshot({ path: path.join(artifacts, 'b-clean.png') });
  // Click a page in the grid (select), then write to it: unflushed data.
  const box = await page.locator('#grid-canvas').boundingBox();
  await page.mouse.click(box.x + 1, box.y + 1);
  await page.fill('#write-data', 'unflushed');
  await waitFor(async () => (await page.locator('#btn-write-page').innerText()) === 'Write to page 0', 'page 0 selected');
  await page.click('#btn-write-page');
  await waitFor(async () => (await rowState(page, 0)) === 'dirty', 'page 0 dirty');
  assert((await page.locator('#hex').innerText()).includes('unflushed'), 'hex view shows the bytes');
  assert((await page.locator('#hex-summary').innerText()).includes('differ from the disk'), 'not durable');
  // Power failure: the unflushed page is lost, the flushed one is on disk.
  await page.click('#btn-power');
  await waitFor(async () => (await rowState(page, 0)) === 'lost', 'page 0 lost');
  assert((await rowState(page, 2)) === 'on-disk', 'page 2 survived');
  assert((await count(page, 'lost')) === 1, 'one lost page');
  assert((await page.locator('#status').innerText()).includes('lost 1 page'), 'status says what was lost');
  assert(!(await page.locator('#hex').innerText()).includes('unflushed'), 'the bytes are gone');
  await page.screenshot({ path: path.join(artifacts, 'c-lost.png') });
  // Step back: replay from the seed to before the power failure.
  await page.click('#btn-back');
  await waitFor(async () => (await page.locator('#position').innerText()) === 'step 3 of 4', 'step 3 of 4');
  assert((await rowState(page, 0)) === 'dirty', 'page 0 dirty again');
  assert((await count(page, 'lost')) === 0, 'nothing lost before the failure');
  // The URL holds the view.
  sharedUrl = page.url();
  sharedState = {
    position: await page.locator('#position').innerText(),
    counts: await page.locator('#counts').innerText(),
    table: await page.locator('#page-table').innerText(),
    time: await page.locator('#sim-time').innerText(),
  };
  assert(sharedUrl.includes('#scenario=') && sharedUrl.includes('step=3'), `url ${sharedUrl}`);
  return page;
});

await test('open a shared URL and land on the same state', async (keep) => {
  assert(sharedUrl, 'no URL from the previous test');
  const page = keep(await open(sharedUrl));
  await waitFor(async () => (await page.locator('#position').innerText()) === sharedState.position, 'same position');
  assert((await page.locator('#counts').innerText()) === sharedState.counts, 'same counts');
  assert((await page.locator('#page-table').innerText()) === sharedState.table, 'same table');
  assert((await page.locator('#sim-time').innerText()) === sharedState.time, 'same simulated time');
  assert((await page.locator('#btn-write-page').innerText()) === 'Write to page 0', 'same selected page');
  // Step forward re-runs the power failure.
  await page.click('#btn-forward');
  await waitFor(async () => (await rowState(page, 0)) === 'lost', 'page 0 lost after stepping forward');
  return page;
});

await test('open a lesson and answer its question', async (keep) => {
  const page = keep(await open(base));
  await page.click('button[data-lesson="why-fsync"]');
  await page.locator('#lesson').waitFor();
  assert((await page.locator('#origin').innerText()).includes('Why fsync'), 'lesson banner');
  await page.click('#lesson-next');
  await waitFor(async () => (await rowState(page, 0)) === 'dirty', 'record dirty');
  assert((await page.locator('#lesson-note').innerText()).includes('DAX mapping'), 'step explained');
  await page.click('#lesson-next');
  await page.locator('#lesson-question').waitFor();
  assert(await page.locator('#lesson-next').isDisabled(), 'next is blocked until the question is answered');
  assert((await count(page, 'lost')) === 0, 'outcome not revealed yet');
  await page.click('#lesson-question button[data-choice="1"]');
  await waitFor(async () => (await page.locator('#lesson-answer').innerText()).startsWith('Right'), 'answer judged');
  await page.click('#lesson-next');
  await waitFor(async () => (await rowState(page, 0)) === 'lost', 'record lost');
  assert(page.url().includes('lesson=why-fsync') && page.url().includes('step=3'), `url ${page.url()}`);
  return page;
});

await test('keyboard: select, write and zoom from the grid', async (keep) => {
  const page = keep(await open(base));
  await page.focus('#grid-canvas');
  await page.keyboard.press('+');
  await waitFor(async () => (await page.locator('#grid-range').innerText()).startsWith('pages 6144–10239'), 'zoomed in');
  await page.keyboard.press('0');
  await waitFor(async () => (await page.locator('#grid-range').innerText()).startsWith('pages 0–16383'), 'whole device');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await waitFor(async () => (await count(page, 'dirty')) === 1, 'a write from the keyboard');
  assert((await rowState(page, 2)) === 'dirty', 'arrow keys moved to page 2');
  // Tab reaches the controls, with a visible focus ring.
  await page.focus('#btn-fsync');
  const outline = await page.$eval('#btn-fsync', (e) => getComputedStyle(e).outlineStyle);
  await page.keyboard.press('Enter');
  await waitFor(async () => (await count(page, 'clean')) === 1, 'fsync from the keyboard');
  assert(outline !== 'none', `focus ring (${outline})`);
  return page;
});

await test('controls: MAP_SYNC refused, hotplug 4 GiB, unplug refused, mode', async (keep) => {
  const page = keep(await open(base));
  await page.click('#btn-mapsync');
  await waitFor(async () => (await page.locator('#status').innerText()).includes('EOPNOTSUPP'), 'MAP_SYNC refused');
  await page.selectOption('#hot-size', '4G');
  await page.click('#btn-hotplug');
  await waitFor(async () => (await count(page, 'untouched')) === 1048576, 'a 1 M-page device');
  await page.click('#btn-unplug');
  await waitFor(async () => (await page.locator('#status').innerText()).includes('hot-unplug'), 'unplug refused');
  await page.fill('#write-offset', '4G');
  await page.fill('#write-offset', '4294963200');
  await page.click('#btn-write');
  await waitFor(async () => (await count(page, 'dirty')) === 1, 'last page of 4 GiB dirty');
  await page.selectOption('#sel-mode', 'real-nvdimm');
  await waitFor(async () => (await count(page, 'on-disk')) === 1, 'real NVDIMM: durable at once');
  await page.click('#chk-writeback');
  await waitFor(async () => !(await page.locator('#chk-writeback').isChecked()), 'writeback off');
  // Play: simulated time passes, one wait step per tick; pause stops it.
  const before = await page.locator('#position').innerText();
  await page.selectOption('#sel-speed', '3');
  await page.click('#btn-play');
  await waitFor(async () => (await page.locator('#position').innerText()) !== before, 'play adds steps', 5000);
  await page.click('#btn-play');
  assert((await page.locator('#btn-play').innerText()).includes('Play'), 'paused');
  assert((await page.locator('#steps').innerText()).includes('wait 30000ms'), 'a wait step per tick');
  return page;
});

await test('crash explorer finds the missing barrier', async (keep) => {
  const page = keep(await open(base));
  await page.selectOption('#sel-workload', 'wal-missing-barrier');
  await page.click('#btn-campaign');
  await page.locator('#counterexample').waitFor({ timeout: 60000 });
  assert((await page.locator('#counterexample').innerText()).includes('committed'), 'counterexample explained');
  assert((await page.locator('#crash-points tr.violation').count()) > 0, 'violations highlighted');
  await page.locator('#point-images').waitFor();
  return page;
});

await test('import a scenario JSON', async (keep) => {
  const page = keep(await open(base));
  const text = fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '../../examples/scenarios/fsyncgate.json'), 'utf8');
  await paste(page, '#io-text', text);
  await page.click('#btn-import-scenario');
  await waitFor(async () => (await page.locator('#origin').innerText()).includes('fsyncgate'), 'scenario loaded');
  const steps = await page.locator('#steps li.step').count();
  assert(steps > 5, `${steps} steps listed`);
  await page.click(`#steps li.step[data-step="${steps - 1}"] button`);
  await waitFor(async () => (await page.locator('#position').innerText()) === `step ${steps - 1} of ${steps - 1}`, 'ran to the end');
  assert((await page.locator('#steps li.failed').count()) === 0, 'every step of the example holds');
  return page;
});

if (logFile) {
  await test('replay an event log exported by the native runner', async (keep) => {
    const page = keep(await open(base));
    await paste(page, '#io-text', fs.readFileSync(logFile, 'utf8'));
    await page.click('#btn-import-log');
    await waitFor(async () => (await page.locator('#origin').innerText()).includes('Replaying'), 'log loaded');
    const end = await page.locator('#position').innerText();
    await page.click('#btn-back');
    await waitFor(async () => (await page.locator('#position').innerText()) !== end, 'stepped back in the log');
    await page.click('#btn-forward');
    await waitFor(async () => (await page.locator('#position').innerText()) === end, 'forward to the end again');
    assert((await page.locator('#timeline li.ev').count()) > 0, 'events listed');
    return page;
  });
} else {
  console.log('skip replay of a native event log: no log file given');
}

await context0.close();
server.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
fs.writeFileSync(path.join(artifacts, 'results.json'), JSON.stringify(results, null, 2));
console.log(`${n - failed} of ${n} end-to-end tests passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
