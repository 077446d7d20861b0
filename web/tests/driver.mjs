// A headless-Chromium driver for the map page, for tests: JSON commands on stdin, one JSON answer per line on
// stdout. Playwright (playwright-core, from npm) drives Debian's Chromium (CPN_CHROMIUM, default /usr/bin/chromium).
//
//   {"op": "open", "url": "http://127.0.0.1:8181/map"}           -> load_ms, first_render_ms, sites, links
//   {"op": "wait_state", "link": "a~b", "state": "degraded", "timeout_ms": 5000}  -> elapsed_ms
//   {"op": "select_policy", "name": "p"}                          -> highlighted links, segments shown
//   {"op": "click_link", "link": "a~b"}                           -> chart series drawn
//   {"op": "snapshot"}                                             -> every data-site, data-link and data-state
//   {"op": "stats"}                                                -> the page's first render and update lags
//   {"op": "screenshot", "path": "/tmp/map.png"}
//   {"op": "close"}
//
// Every answer is {"ok": true, ...} or {"ok": false, "error": "..."}.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const profile = mkdtempSync(join(tmpdir(), 'cpn-map-chromium-'));
// The flags this machine's closed network needs (no background connections), a fresh profile.
// Playwright passes the fresh profile as --user-data-dir itself (launchPersistentContext).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CPN_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1400, height: 900 },
});
let page = null;
const consoleErrors = [];
const foreignRequests = [];

const snapshot = () => page.evaluate(() => ({
  sites: [...document.querySelectorAll('[data-site]')].filter((e) => e.closest('#map'))
    .map((e) => e.getAttribute('data-site')),
  links: Object.fromEntries([...document.querySelectorAll('#map [data-link]')]
    .map((e) => [e.getAttribute('data-link'), e.getAttribute('data-state')])),
  alarms: [...document.querySelectorAll('#alarms [data-alarm]')].map((e) => e.textContent),
  policies: [...document.querySelectorAll('[data-policy]')].map((e) => e.getAttribute('data-policy')),
  steering: [...document.querySelectorAll('#map [data-steer]')].map((e) => e.getAttribute('data-steer')),
}));

const ops = {
  async open({ url, sites = [], links = [], timeout_ms: timeout = 15000 }) {
    page = await context.newPage();
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    const origin = new URL(url).origin;
    page.on('request', (request) => {  // the page must work offline: nothing but its own server
      if (!request.url().startsWith(origin) && !request.url().startsWith('data:')) foreignRequests.push(request.url());
    });
    const started = Date.now();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout });
    await page.waitForFunction(([wantSites, wantLinks]) => document.documentElement.dataset.ready === 'true'
      && wantSites.every((s) => document.querySelector(`#map [data-site="${CSS.escape(s)}"]`))
      && wantLinks.every((l) => document.querySelector(`#map [data-link="${CSS.escape(l)}"]`)),
    [sites, links], { timeout, polling: 20 });
    const loadMs = Date.now() - started;
    const timing = await page.evaluate(() => ({
      first_render_ms: window.cpnMap.stats.firstRenderMs,
      dom_content_loaded_ms: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd),
    }));
    return { load_ms: loadMs, ...timing, ...(await snapshot()) };
  },
  async wait_state({ link, state, timeout_ms: timeout = 5000 }) {
    const started = Date.now();
    await page.waitForFunction(([id, want]) => {
      const node = document.querySelector(`#map [data-link="${CSS.escape(id)}"]`);
      return node && node.getAttribute('data-state') === want;
    }, [link, state], { timeout, polling: 20 });
    return { elapsed_ms: Date.now() - started };
  },
  async select_policy({ name }) {
    await page.click(`button[data-policy="${name}"]`);
    await page.waitForSelector('#map [data-link][data-highlight="true"]', { timeout: 5000 });
    return page.evaluate(() => ({
      highlighted: [...document.querySelectorAll('#map [data-link][data-highlight="true"]')]
        .map((e) => e.getAttribute('data-link')),
      highlighted_sites: [...document.querySelectorAll('#map [data-site][data-highlight="true"]')]
        .map((e) => e.getAttribute('data-site')),
      segments: [...document.querySelectorAll('#details ol.segments li')].map((e) => e.textContent),
      pressed: document.querySelector('button[aria-pressed="true"]')?.getAttribute('data-policy') ?? null,
    }));
  },
  async click_link({ link, timeout_ms: timeout = 8000 }) {
    await page.click(`#map [data-link="${link}"] line.hit`, { force: true });
    await page.waitForSelector('#details svg[data-chart="delay"] polyline', { timeout });
    return page.evaluate(() => ({
      title: document.querySelector('#details h3')?.textContent,
      series: [...document.querySelectorAll('#details svg[data-chart] polyline')]
        .map((e) => e.getAttribute('data-series')),
    }));
  },
  async snapshot() {
    return snapshot();
  },
  async stats() {
    return page.evaluate(() => window.cpnMap.stats)
      .then((stats) => ({ ...stats, console_errors: consoleErrors, foreign_requests: foreignRequests }));
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return { path };
  },
  async close() {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    process.exit(0);
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const op = ops[command.op];
    if (!op) throw new Error(`unknown op ${JSON.stringify(command.op)}; known: ${Object.keys(ops).join(', ')}`);
    answer = { ok: true, ...(await op(command)) };
  } catch (err) {
    answer = { ok: false, error: String(err && err.message ? err.message : err).slice(0, 2000) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await ops.close();
