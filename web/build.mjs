// Build the map page into ../build/web: one bundled script (esbuild), the stylesheet and index.html.
// Everything the page needs is in that directory: it loads nothing from the internet.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.CPN_MAP_DIR || join(here, '..', 'build', 'web');

await mkdir(out, { recursive: true });
const started = Date.now();
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(join(here, 'src', 'app.css'), join(out, 'app.css'));
await copyFile(join(here, 'src', 'index.html'), join(out, 'index.html'));
const lock = JSON.parse(await readFile(join(here, 'package-lock.json'), 'utf8'));
const versions = Object.fromEntries(Object.entries(lock.packages)
  .filter(([path]) => path.startsWith('node_modules/') && !lock.packages[path].dev)
  .map(([path, entry]) => [path.slice('node_modules/'.length), entry.version]));
await writeFile(join(out, 'build.json'), `${JSON.stringify({ built_at: new Date().toISOString(), versions }, null, 1)}\n`);
console.log(`map: built ${out} in ${Date.now() - started} ms`);
