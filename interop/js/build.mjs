// Bundle browser/app.mjs with esbuild: node build.mjs [OUT_DIR] -> OUT_DIR/app.js + index.html.
// Default OUT_DIR is inside node_modules/.cache (ignored by git); run_interop.py passes its work folder.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] || path.join(here, 'node_modules', '.cache', 'abdicom-browser'));
fs.mkdirSync(out, { recursive: true });
const t0 = Date.now();
await esbuild.build({
  entryPoints: [path.join(here, 'browser', 'app.mjs')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'chrome120',
  outfile: path.join(out, 'app.js'),
  sourcemap: false,
  minify: false,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.wasm': 'file' },
  // node built-ins reached through xmlbuilder2 (not on the SEG code path): small stand-ins
  alias: { events: path.join(here, 'browser', 'shims', 'events.js'), url: path.join(here, 'browser', 'shims', 'url.js') },
});
fs.copyFileSync(path.join(here, 'browser', 'index.html'), path.join(out, 'index.html'));
console.log(`built ${path.join(out, 'app.js')} (${fs.statSync(path.join(out, 'app.js')).size} bytes) in ${Date.now() - t0} ms`);
