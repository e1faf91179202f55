// node run_ohif.mjs CONFIG.json
// CONFIG: {"base": "http://127.0.0.1:PORT", "study": UID, "target_instance": N,
//          "segs": [{"name": "deflate", "description": "interop_deflate", "screenshot": "...png"}],
//          "chromium": "/usr/bin/chromium", "timeout_ms": 60000}
// Opens the OHIF viewer (served by run_interop.py, data from Orthanc over DICOMweb) in
// headless Debian chromium, double-clicks the SEG series in the study browser, answers
// the "open this Segmentation?" prompt, scrolls to the image with InstanceNumber
// target_instance, opens the segmentation panel and reads its rows (number, label,
// colour). Prints one JSON line {name: {...}}.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const timeout = cfg.timeout_ms || 60000;
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'abdicom-ohif-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = {};

async function sliceIndex(page) {
  // viewport overlay "I: 20 (21/40)": instance number and position in the stack
  const text = await page.evaluate(() => document.body.innerText);
  const m = /I:\s*(\d+)\s*\((\d+)\/(\d+)\)/.exec(text);
  return m ? { instance: Number(m[1]), index: Number(m[2]), total: Number(m[3]) } : null;
}

try {
  for (const seg of cfg.segs) {
    const started = Date.now();
    const res = { steps: [] };
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e).slice(0, 300)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text().slice(0, 300)); });
    await page.route('**/*', (route) => {
      const u = new URL(route.request().url());
      return u.hostname === '127.0.0.1' || ['data:', 'blob:'].includes(u.protocol) ? route.continue() : route.abort();
    });
    try {
      await page.goto(`${cfg.base}/viewer?StudyInstanceUIDs=${cfg.study}`, { waitUntil: 'load', timeout });
      await page.getByText(seg.description, { exact: true }).first().waitFor({ timeout });
      res.steps.push('study browser lists the SEG');
      try { await page.getByText('Skip all').click({ timeout: 4000 }); } catch (e) { /* no tour */ }
      await page.waitForTimeout(1500);
      await page.getByText(seg.description, { exact: true }).first().dblclick({ timeout: 10000 });
      try {
        await page.getByRole('button', { name: 'Yes' }).click({ timeout: 20000 });
        res.steps.push('prompt "open this Segmentation?" answered');
      } catch (e) {
        res.steps.push('no prompt');
      }
      await page.waitForTimeout(4000);
      // scroll to the target image
      await page.mouse.move(640, 420);
      let pos = await sliceIndex(page);
      for (let i = 0; i < 80 && pos && pos.instance !== cfg.target_instance; i++) {
        // wheel down moves to the next index; instance numbers may run the other way
        const before = pos;
        await page.mouse.wheel(0, 100);
        await page.waitForTimeout(120);
        pos = await sliceIndex(page);
        if (pos && before && pos.index === before.index && i > 3) break;
        if (pos && pos.index === pos.total && pos.instance !== cfg.target_instance) {
          for (let j = 0; j < pos.total && pos.instance !== cfg.target_instance; j++) {
            await page.mouse.wheel(0, -100);
            await page.waitForTimeout(120);
            pos = await sliceIndex(page);
          }
          break;
        }
      }
      res.slice = pos;
      await page.waitForTimeout(1500);
      // segmentation panel: the right side panel toggle (top right, under the toolbar)
      if (!(await page.locator('[data-cy="data-row-title"]').count())) {
        await page.mouse.click(1262, 100);
        await page.waitForTimeout(2500);
      }
      res.rows = await page.evaluate(() => [...document.querySelectorAll('[data-cy="data-row"]')].map((row) => {
        const title = row.querySelector('[data-cy="data-row-title"]');
        const dot = row.querySelector('[data-cy="data-row-colorhex"]');
        const number = row.children[1] ? Number(row.children[1].textContent.trim()) : NaN;
        const rgb = dot ? (dot.style.backgroundColor.match(/\d+/g) || []).map(Number) : [];
        return { number, label: title ? title.textContent.trim() : '', rgb: rgb.slice(0, 3) };
      }));
      if (seg.screenshot) {
        await page.screenshot({ path: seg.screenshot });
        res.screenshot = seg.screenshot;
      }
      res.stage = 'done';
    } catch (e) {
      res.stage = 'error';
      res.error = `${e.name}: ${String(e.message).split('\n')[0].slice(0, 200)}`;
      try { await page.screenshot({ path: (seg.screenshot || path.join(os.tmpdir(), 'ohif-error.png')) }); } catch (e2) { /* ignore */ }
    }
    res.console_errors = errors.slice(0, 5);
    res.ms = Date.now() - started;
    out[seg.name] = res;
    await page.close();
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
