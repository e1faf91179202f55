// node run_browser.mjs CONFIG.json
// CONFIG: {"pages": [{"name": "...", "url": "http://127.0.0.1:.../index.html?...", "screenshot": "out.png"}],
//          "chromium": "/usr/bin/chromium", "timeout_ms": 60000}
// Opens each page in headless Debian chromium (playwright-core), waits for
// window.__abdicom.stage to be "done" or "error:*", saves the screenshot, and prints one
// JSON line: {"<name>": {result..., "console_errors": [...], "ms": ...}}.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'abdicom-chromium-'));
const out = {};
const t0 = Date.now();
const context = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 560, height: 600 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
out._launch_ms = Date.now() - t0;
try {
  for (const p of cfg.pages) {
    const started = Date.now();
    const page = await context.newPage();
    const errors = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text().slice(0, 300)); });
    page.on('pageerror', (e) => errors.push(String(e).slice(0, 300)));
    // nothing but 127.0.0.1
    await page.route('**/*', (route) => {
      const u = new URL(route.request().url());
      return ['127.0.0.1', 'localhost'].includes(u.hostname) || u.protocol === 'data:' || u.protocol === 'blob:'
        ? route.continue() : route.abort();
    });
    let res;
    try {
      await page.goto(p.url, { waitUntil: 'load', timeout: cfg.timeout_ms || 60000 });
      await page.waitForFunction(() => window.__abdicom && (window.__abdicom.stage === 'done' ||
        String(window.__abdicom.stage).startsWith('error')), null, { timeout: cfg.timeout_ms || 60000 });
      res = await page.evaluate(() => window.__abdicom);
      // coloured pixels in the viewport canvas = segments drawn over the grey image
      res.coloured_pixels = await page.evaluate(() => {
        const canvases = [...document.querySelectorAll('#viewport canvas')];
        let n = 0;
        for (const c of canvases) {
          let ctx2d = null;
          try { ctx2d = c.getContext('2d'); } catch (e) { ctx2d = null; }
          if (!ctx2d) continue;
          const d = ctx2d.getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < d.length; i += 4) {
            const r = d[i], g = d[i + 1], b = d[i + 2];
            if (Math.max(Math.abs(r - g), Math.abs(g - b), Math.abs(r - b)) > 40) n++;
          }
        }
        return n;
      });
      if (p.screenshot) {
        await page.screenshot({ path: p.screenshot });
        res.screenshot = p.screenshot;
      }
    } catch (e) {
      res = Object.assign(res || {}, { ok: false, error: `${e.name}: ${String(e.message).split('\n')[0]}` });
      try { Object.assign(res, await page.evaluate(() => window.__abdicom)); } catch (e2) { /* page gone */ }
      res.ok = false;
    }
    res.console_errors = errors.slice(0, 5);
    res.ms = Date.now() - started;
    out[p.name] = res;
    await page.close();
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
