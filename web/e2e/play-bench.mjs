// Frame times of the visualizer while Play runs through the events of an
// fsync of 1,000 written pages (the diagram's token travelling, the grid,
// the timeline), in Debian's headless Chromium. Prints one JSON object.
//
//   node web/e2e/play-bench.mjs <site-dir>
//
// For each speed measured, Play starts on the step after the 1,000-page
// write and the page records, for SECONDS seconds, the interval between
// requestAnimationFrame callbacks (a frame the main thread could not
// paint shows as a long interval) and the long tasks (> 50 ms) the
// browser reports.

import fs from 'node:fs';
import path from 'node:path';
import { launchChromium, serveSite } from './browser.mjs';

const SECONDS = 8;
const siteDir = path.resolve(process.argv[2] || 'target/site');
const { server, base } = await serveSite(siteDir);

// 1,000 pages written in one store (4,096,000 bytes), then an fsync.
const scenario = {
  version: 1, name: 'Play benchmark', description: '1,000 written pages, then an fsync.', seed: 1,
  devices: [{ id: 'nv1', 'mem-path': './nv1.img', size: '64M', share: true, mode: 'virtio-pmem' }],
  steps: [
    { op: 'write', device: 'nv1', offset: 0, text: 'x', len: '4000K' },
    { op: 'fsync', device: 'nv1' },
  ],
};
const link = `${base}#scenario=${Buffer.from(JSON.stringify(scenario)).toString('base64url')}&step=1`;

const { context, close: closeChromium } = await launchChromium('play', { width: 1400, height: 900 });

function stats(v) {
  const s = [...v].sort((a, b) => a - b);
  const q = (f) => s[Math.round((s.length - 1) * f)];
  return { frames: s.length, median_ms: q(0.5), p95_ms: q(0.95), max_ms: s[s.length - 1] };
}

const results = {};
const errors = [];
// The beginner view at Play's default speed (4 events per tick), and the
// expert view (every panel drawn) at the fastest (64 events per tick).
for (const [view, speed, name] of [['beginner', null, 'beginner_4_events_per_tick'], ['expert', 3, 'expert_64_events_per_tick']]) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(view === 'expert' ? `${link}&view=expert` : link);
  await page.locator('#grid-canvas').waitFor({ timeout: 20000 });
  const written = await page.locator('#counts li[data-state="dirty"] .count').innerText();
  if (written !== '1000') errors.push(`expected 1000 dirty pages, found ${written}`);
  if (speed !== null) await page.selectOption('#sel-speed', String(speed));
  const before = await page.locator('#event-position').innerText();
  await page.evaluate(() => {
    window.__frames = [];
    window.__long = [];
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
      .observe({ type: 'longtask', buffered: false });
    let last = null;
    const tick = (ts) => {
      if (last !== null) window.__frames.push(ts - last);
      last = ts;
      if (!window.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await page.click('#btn-play');
  await page.waitForTimeout(SECONDS * 1000);
  const r = await page.evaluate(() => { window.__stop = true; return { frames: window.__frames, long: window.__long }; });
  await page.click('#btn-play');
  const after = await page.locator('#event-position').innerText();
  results[name] = { ...stats(r.frames), long_tasks: r.long.length, longest_task_ms: r.long.length ? Math.max(...r.long) : 0,
    events_before: before, events_after: after };
  await page.close();
}
await closeChromium();
server.close();
if (errors.length) {
  console.error(`errors: ${errors.join('; ')}`);
  process.exit(1);
}
console.log(JSON.stringify({ seconds: SECONDS, written_pages: 1000, budget_ms: 50, ...results }));
