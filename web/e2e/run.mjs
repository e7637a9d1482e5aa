// End-to-end tests of the pmemlab visualizer in Debian's headless Chromium,
// driven by playwright-core (which never downloads a browser here).
//
//   node web/e2e/run.mjs <site-dir> <artifacts-dir> [event-log.json]
//
// Serves the built site on 127.0.0.1 (a free port), runs every test in a
// fresh browser context, keeps a screenshot per test, fails on any page
// error, and exits non-zero when a test fails.

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium, serveSite } from './browser.mjs';

const [siteArg, artifacts, logFile] = process.argv.slice(2);
const siteDir = siteArg && path.resolve(siteArg);
if (!siteArg || !artifacts) {
  console.error('usage: node run.mjs <site-dir> <artifacts-dir> [event-log.json]');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });

const { server, base } = await serveSite(siteDir);

const { context: context0, close: closeChromium } = await launchChromium('e2e');

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

// The expert view (every panel), where most tests act through the forms.
const expert = `${base}#view=expert`;

async function open(url, viewport) {
  const page = await context0.newPage();
  if (viewport) await page.setViewportSize(viewport);
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
  const page = keep(await open(expert));
  assert((await page.title()).includes('pmemlab'), 'title');
  await waitFor(async () => (await count(page, 'untouched')) === 16384, '16384 untouched pages');
  assert((await page.locator('#position').innerText()) === 'step 0 of 0', 'position');
  assert((await page.locator('#grid-canvas').getAttribute('aria-label')).includes('none written'), 'grid text');
  return page;
});

await test('write, flush, power failure, step back, share', async (keep) => {
  const page = keep(await open(expert));
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
  assert(await page.locator('#status.loss').count() === 1, 'a power failure that lost data is not styled as a success');
  assert((await page.locator('#status').innerText()).startsWith('Data lost'), 'the status says data was lost');
  // The lost page's bytes before and after the failure.
  await page.locator('#page-table tr[data-page="0"] button').click();
  await page.locator('#crash-change').waitFor();
  assert((await page.locator('#crash-change').innerText()).includes('unflushed'), 'the bytes before the failure');
  // Step back: replay from the seed to before the power failure.
  await page.click('#btn-step-back');
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
  await page.click('#btn-step-forward');
  await waitFor(async () => (await rowState(page, 0)) === 'lost', 'page 0 lost after stepping forward');
  return page;
});

function inViewport(box, vp) {
  return box && box.x >= 0 && box.y >= 0 && box.x + box.width <= vp.width + 1 && box.y + box.height <= vp.height + 1;
}

await test('a lesson opens in view, a wrong answer explains and allows a retry, focus follows', async (keep) => {
  const page = keep(await open(base));
  await page.click('#lessons-summary');
  await page.click('button[data-lesson="why-fsync"]');
  await page.locator('#lesson').waitFor();
  assert((await page.locator('#origin').innerText()).includes('Why fsync'), 'lesson banner');
  await waitFor(async () => page.$eval('#lessons', (e) => !e.open), 'the lesson menu closes');
  const vp = page.viewportSize();
  assert(inViewport(await page.locator('#lesson').boundingBox(), vp), `the lesson box is in the viewport: ${JSON.stringify(await page.locator('#lesson').boundingBox())}`);
  assert(inViewport(await page.locator('#diagram').boundingBox(), { width: vp.width, height: vp.height * 1.2 }), 'the diagram is beside it');
  await page.click('#lesson-next');
  await waitFor(async () => (await page.locator('#comp-cache .detail').textContent()).startsWith('1 dirty'), 'record dirty in the diagram');
  assert((await page.locator('#lesson-note').innerText()).includes('DAX mapping'), 'step explained');
  await page.click('#lesson-next');
  await page.locator('#lesson-question').waitFor();
  await waitFor(async () => (await page.evaluate(() => document.activeElement && document.activeElement.id)) === 'lesson-question', 'focus on the question');
  assert(await page.locator('#lesson-next').isDisabled(), 'next is blocked until the question is answered');
  const read = `${await page.locator('#lesson .lesson-desc').innerText()} ${await page.locator('#lesson-note').innerText()} ${await page.locator('#lesson .lesson-next-line').innerText()}`;
  assert(!read.toLowerCase().includes('zeros'), `nothing before the question gives the answer away: ${read}`);
  // A wrong answer: explained, marked, and the question stays open.
  await page.click('#lesson-question button[data-choice="0"]');
  await waitFor(async () => (await page.locator('#lesson-answer').innerText()).startsWith('Not quite'), 'wrong answer explained');
  assert(await page.locator('#lesson-question button[data-choice="0"]').isDisabled(), 'the wrong choice is marked');
  assert(await page.locator('#lesson-next').isDisabled(), 'still blocked after a wrong answer');
  // The retry.
  await page.click('#lesson-question button[data-choice="1"]');
  await waitFor(async () => (await page.locator('#lesson-answer').innerText()).startsWith('Right'), 'right answer');
  await waitFor(async () => (await page.evaluate(() => document.activeElement && document.activeElement.id)) === 'lesson-next', 'focus back on the lesson');
  await page.click('#lesson-next');
  await waitFor(async () => (await page.locator('#comp-disk .detail').textContent()).includes('1 lost'), 'record lost');
  assert((await page.locator('#status.loss').count()) === 1, 'the power failure of the lesson is not styled as a success');
  assert(page.url().includes('lesson=why-fsync') && page.url().includes('step=3'), `url ${page.url()}`);
  return page;
});

await test('leaving a lesson with a playground button asks first', async (keep) => {
  const page = keep(await open(`${base}#lesson=why-fsync&step=1`));
  await page.locator('#lesson').waitFor();
  const before = await page.locator('#position').innerText();
  await page.click('#btn-quick-write');
  await page.locator('#leave-dialog').waitFor();
  assert((await page.locator('#position').innerText()) === before, 'nothing ran yet');
  assert((await page.evaluate(() => document.activeElement.id)) === 'btn-stay', 'focus on the safe choice');
  await page.click('#btn-stay');
  await waitFor(async () => (await page.locator('#leave-dialog').count()) === 0, 'dialog closed');
  assert((await page.locator('#origin').innerText()).startsWith('Lesson'), 'still in the lesson');
  await page.click('#btn-power');
  await page.locator('#leave-dialog').waitFor();
  await page.click('#btn-leave');
  await waitFor(async () => !(await page.locator('#origin').innerText()).startsWith('Lesson'), 'left the lesson');
  assert((await page.locator('#position').innerText()) === 'step 2 of 2', 'the action ran after the yes');
  return page;
});

await test('the diagram labels every component', async (keep) => {
  const page = keep(await open(base));
  const want = { app: 'Guest application', dax: 'DAX mapping', driver: 'Guest driver', desc: 'Descriptor table',
    avail: 'Available ring', used: 'Used ring', device: 'Device (VMM)', cache: 'Host page cache', disk: 'Disk' };
  for (const [key, label] of Object.entries(want)) {
    const text = await page.locator(`#comp-${key} .label`).textContent();
    assert(text === label, `${key}: ${text}`);
    const box = await page.locator(`#comp-${key} rect`).boundingBox();
    assert(box && box.width > 60 && box.height > 30, `${key} drawn: ${JSON.stringify(box)}`);
  }
  return page;
});

await test('a flush stepped event by event moves the request through the diagram', async (keep) => {
  const page = keep(await open(base));
  await page.click('#btn-quick-write');
  await page.click('#btn-fsync');
  await waitFor(async () => (await page.locator('#comp-cache .detail').textContent()).includes('1 clean'), 'page clean');
  const where = async () => ({
    place: await page.locator('#token').getAttribute('data-place'),
    event: await page.locator('#token').getAttribute('data-event'),
    caption: await page.locator('#scene-caption').innerText(),
    current: await page.locator('#timeline li.current').getAttribute('data-seq'),
  });
  // Back to the first stage, one event at a time.
  const seen = [];
  for (let i = 0; i < 40; i++) {
    const w = await where();
    seen.unshift(w);
    if (w.caption.includes('stage 1 of 9')) break;
    const ev = w.event;
    await page.click('#btn-back');
    await waitFor(async () => (await page.locator('#token').getAttribute('data-event')) !== ev, 'moved back one event');
  }
  assert(seen[0].caption.includes('stage 1 of 9'), `reached the first stage: ${seen[0].caption}`);
  assert((await page.locator('#comp-cache .detail').textContent()).startsWith('1 dirty'), 'before the flush the page is dirty again');
  // Forward again, event by event: the stages in order, the token moving.
  const places = [];
  const stages = [];
  for (let i = 0; i < 40; i++) {
    const w = await where();
    assert(w.current === w.event, `timeline highlights event ${w.event} (got ${w.current})`);
    places.push(w.place);
    const m = w.caption.match(/stage (\d) of 9/);
    if (m) stages.push(Number(m[1]));
    if (await page.locator('#btn-forward').isDisabled()) break;
    await page.click('#btn-forward');
    await waitFor(async () => (await page.locator('#token').getAttribute('data-event')) !== w.event, 'moved forward one event');
  }
  const distinct = places.filter((p, i) => i === 0 || p !== places[i - 1]);
  for (const p of ['app', 'avail', 'device', 'cache', 'disk', 'used', 'driver']) {
    assert(distinct.includes(p), `the request passed ${p}: ${distinct.join(' → ')}`);
  }
  assert(distinct.indexOf('avail') < distinct.indexOf('disk') && distinct.indexOf('disk') < distinct.lastIndexOf('used'), `order: ${distinct.join(' → ')}`);
  const ordered = stages.filter((s, i) => i === 0 || s !== stages[i - 1]);
  assert(JSON.stringify(ordered) === JSON.stringify([1, 2, 3, 4, 5, 6, 7, 8, 9]), `stages ${ordered}`);
  assert((await page.locator('#comp-cache .detail').textContent()).includes('1 clean'), 'clean at the end');
  fs.writeFileSync(path.join(artifacts, 'flush-path.txt'), distinct.join(' -> ') + '\n');
  return page;
});

await test('the token travels, and with prefers-reduced-motion it does not', async (keep) => {
  let page = await open(base);
  await page.click('#btn-quick-write');
  await page.waitForTimeout(1800);
  await page.click('#btn-fsync');
  // Sample the token's position while it travels: it moves through places.
  const seen = new Set();
  for (let i = 0; i < 12; i++) {
    seen.add(await page.locator('#token').getAttribute('transform'));
    await page.waitForTimeout(100);
  }
  assert(seen.size >= 3, `the token moved through ${seen.size} positions`);
  await page.close();
  page = keep(await open(base));
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await page.click('#btn-quick-write');
  await page.click('#btn-fsync');
  await waitFor(async () => (await page.locator('#token').getAttribute('data-place')) === 'app', 'fsync returned');
  const positions = new Set();
  for (let i = 0; i < 6; i++) {
    positions.add(await page.locator('#token').getAttribute('transform'));
    await page.waitForTimeout(80);
  }
  assert(positions.size === 1, `no travel under reduced motion: ${[...positions].join(' ')}`);
  assert((await page.locator('#comp-app').getAttribute('class')).includes('active'), 'the component is highlighted instead');
  return page;
});

await test('the grid fits one written page of 64 MiB with cells of 8 px or more', async (keep) => {
  const page = keep(await open(base));
  await page.click('#btn-quick-write');
  await waitFor(async () => (await page.locator('#grid-range').innerText()).includes('fitted'), 'fitted');
  const range = await page.locator('#grid-range').innerText();
  const px = Number(range.match(/one page per (\d+) px cell/)[1]);
  const scale = await page.$eval('#grid-canvas', (c) => c.clientWidth / c.width);
  assert(px * scale >= 8, `cells of ${px} raster px × ${scale} = ${px * scale} CSS px (${range})`);
  assert(range.includes('of 16384'), range);
  return page;
});

await test('the beginner view shows at most six controls; a link opens the expert view', async (keep) => {
  const page = keep(await open(base));
  const ids = await page.$$eval('main button, main input, main select, main textarea, main summary, main a[href]',
    (els) => els.filter((e) => e.offsetParent !== null).map((e) => e.id || e.textContent));
  assert(ids.length <= 6, `controls in the beginner view: ${ids.join(', ')}`);
  assert(JSON.stringify(ids) === JSON.stringify(['btn-quick-write', 'btn-fsync', 'btn-power', 'btn-back', 'btn-forward', 'btn-play']), ids.join(', '));
  assert((await page.locator('#expert-panels').count()) === 0, 'no expert panel');
  await page.click('#btn-level');
  await page.locator('#expert-panels').waitFor();
  assert(page.url().includes('view=expert'), `the link says so: ${page.url()}`);
  const other = await open(page.url());
  await other.locator('#expert-panels').waitFor();
  await other.close();
  return page;
});

await test('screenshots at 1920x1080 and 768x1024 use the space', async (keep) => {
  let page;
  for (const [w, h] of [[1920, 1080], [768, 1024]]) {
    for (const view of ['beginner', 'expert']) {
      page = await open(view === 'expert' ? expert : base, { width: w, height: h });
      await page.click('#btn-quick-write');
      await page.click('#btn-fsync');
      await page.waitForTimeout(1800);
      const canvas = await page.locator('#grid-canvas').boundingBox();
      const diagram = await page.locator('#diagram').boundingBox();
      assert(canvas.width >= w * 0.5, `${w}x${h}: the grid is ${canvas.width} px wide`);
      assert(diagram.width >= w * 0.5, `${w}x${h}: the diagram is ${diagram.width} px wide`);
      await page.screenshot({ path: path.join(artifacts, `view-${view}-${w}x${h}.png`) });
      if (!(view === 'expert' && w === 768)) await page.close();
    }
  }
  return keep(page);
});

const axeSource = fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/axe-core/axe.min.js'), 'utf8');
const audits = {};
async function audit(page, name) {
  await page.addScriptTag({ content: axeSource });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, target: v.nodes[0] && v.nodes[0].target }));
  });
  audits[name] = r;
  const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert(bad.length === 0, `${name}: ${bad.map((v) => `${v.impact} ${v.id} (${v.help}) at ${JSON.stringify(v.target)}`).join('; ')}`);
}

await test('axe-core: no serious or critical violation in the beginner view, the expert view and a lesson', async (keep) => {
  let page = await open(base);
  await page.click('#btn-quick-write');
  await page.click('#btn-fsync');
  await audit(page, 'beginner');
  await page.close();
  page = await open(expert);
  await page.click('#btn-quick-write');
  await page.click('#btn-power');
  await page.selectOption('#sel-workload', 'wal-missing-barrier');
  await page.click('#btn-campaign');
  await page.locator('#point-images').waitFor({ timeout: 60000 });
  await audit(page, 'expert');
  await page.close();
  page = keep(await open(`${base}#lesson=why-fsync&step=2`));
  await page.locator('#lesson-question').waitFor();
  await page.click('#lesson-question button[data-choice="0"]');
  await audit(page, 'lesson');
  fs.writeFileSync(path.join(artifacts, 'axe.json'), JSON.stringify(audits, null, 2));
  return page;
});

await test('keyboard: select, write and zoom from the grid', async (keep) => {
  const page = keep(await open(expert));
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
  const page = keep(await open(expert));
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
  const page = keep(await open(expert));
  await page.selectOption('#sel-workload', 'wal-missing-barrier');
  await page.click('#btn-campaign');
  await page.locator('#counterexample').waitFor({ timeout: 60000 });
  assert((await page.locator('#counterexample').innerText()).includes('committed'), 'counterexample explained');
  assert((await page.locator('#crash-points tr.violation').count()) > 0, 'violations highlighted');
  await page.locator('#point-images').waitFor();
  // The counts agree: the table's images of the point and the list's.
  const caption = await page.locator('#point-images caption').innerText();
  const selected = await page.locator('#crash-points tr.selected td:nth-child(5)').innerText();
  assert(caption.includes(`: ${selected} distinct`), `table says ${selected}, list says ${caption}`);
  assert((await page.locator('#crash-timeline .cp-dot.violation').count()) > 0, 'violations on the timeline');
  assert((await page.locator('#point-images .strip').count()) > 0, 'images drawn as strips');
  assert((await page.locator('#explorer-terms dfn').allInnerTexts()).join(',') === 'crash point,write index,durable image,torn', 'terms defined');
  return page;
});

await test('import a scenario JSON', async (keep) => {
  const page = keep(await open(expert));
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
    const page = keep(await open(expert));
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

await closeChromium();
server.close();
fs.writeFileSync(path.join(artifacts, 'results.json'), JSON.stringify(results, null, 2));
console.log(`${n - failed} of ${n} end-to-end tests passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
