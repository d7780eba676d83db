// Bootstrap Italia's stylesheet cut down to the rules Sportello's pages can use: the full file
// (web/assets/bootstrap-italia/css/bootstrap-italia.min.css, 612 KB, as the npm package ships
// it) is the source; the pages load bootstrap-italia.used.css (about 62 KB), which keeps every
// rule whose classes, ids and elements appear anywhere in the templates, the pages' scripts or
// the web crate's Rust code, and every font face and custom property. After changing a
// template's classes: node tools/purge-css.mjs (needs `npm install` in tests/e2e). The suite
// checks that the file is up to date and that the pages look the same, pixel for pixel, with
// either stylesheet (tests/e2e/stylesheet.test.mjs).
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
export const FULL = join(web, 'assets/bootstrap-italia/css/bootstrap-italia.min.css');
export const USED = join(web, 'assets/bootstrap-italia/css/bootstrap-italia.used.css');

// The used rules, as text.
export async function usedCss() {
  const require = createRequire(join(root, 'tests/e2e/package.json'));
  const { PurgeCSS } = await import(pathToFileURL(require.resolve('purgecss')).href);
  const [result] = await new PurgeCSS().purge({
    content: [`${web}/templates/**/*.html`, `${web}/assets/*.js`, `${web}/src/**/*.rs`],
    css: [FULL],
    fontFace: false,
    keyframes: true,
    variables: false,
  });
  return `/* Bootstrap Italia (BSD-3-Clause, see ../LICENSE), only the rules Sportello uses: made by tools/purge-css.mjs from bootstrap-italia.min.css. */\n${result.css}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const css = await usedCss();
  writeFileSync(USED, css);
  console.log(`purge-css: ${USED}: ${css.length} bytes`);
}
