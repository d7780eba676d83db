// The pages load Bootstrap Italia cut down to the rules they use (tools/purge-css.mjs). Two
// checks that the cut is safe: the file served is what the tool makes from today's templates,
// scripts and code (a class added without running the tool fails here), and every page reached
// from the citizen's home, a room (both roles) and the console, and two error pages, at 360 and
// 1280 px, is the same, pixel for pixel, with the full stylesheet as with the cut one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, createAdmin, firstLogin } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { roomPaths } from './call-helpers.mjs';
import { FULL, USED, usedCss } from '../../tools/purge-css.mjs';

const PAGES = 45;
// Links not to follow: files, the logout, what changes the data.
const SKIP = /\.(ics|csv|json|pdf)|\/esci|\/annulla|\/static\//;

test('the cut stylesheet is what tools/purge-css.mjs makes of the tree today', async () => {
  assert.ok(readFileSync(USED, 'utf8') === (await usedCss()), 'bootstrap-italia.used.css is out of date: run node tools/purge-css.mjs');
});

test('every page looks the same with the cut stylesheet as with the full one, at 360 and 1280 px', async () => {
  let server = await startServer(['--worker-interval', '3600']);
  const browser = await launchBrowser();
  try {
    const { code } = await bookVideo(await (await browser.newContext()).newPage(), server);
    await server.stop({ keep: true });
    const password = createAdmin(server.dir);
    const room = roomPaths(server.dir, code);
    server = await startServer(['--worker-interval', '3600'], server.dir);
    const page = await (await browser.newContext()).newPage();
    await firstLogin(page, server.base, 'admin@comune.esempio.it', password);

    // The pages, breadth first from where people start.
    const seen = new Set();
    const queue = ['/', room.citizen, room.operator, '/prova-video', '/ufficio'];
    while (queue.length && seen.size < PAGES) {
      const path = queue.shift();
      if (seen.has(path)) continue;
      seen.add(path);
      await page.goto(server.base + path);
      for (const href of await page.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href')))) {
        if (href.startsWith('/') && !SKIP.test(href) && !seen.has(href)) queue.push(href);
      }
    }
    assert.ok(seen.size >= 30, `pages reached: ${[...seen].join(' ')}`);
    // And the answers no link leads to: a page that does not exist, a room link that is not one.
    seen.add('/non-esiste');
    seen.add('/stanza/non-un-link');

    const full = readFileSync(FULL);
    const differ = [];
    const shot = async (path) => {
      await page.goto(server.base + path);
      await page.evaluate(() => document.fonts.ready);
      // The countdown ticks between the two pictures.
      return page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide', mask: [page.locator('#countdown')] });
    };
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      const same = async (path) => {
        const cut = await shot(path);
        await page.route('**/bootstrap-italia.used.*.css', (r) => r.fulfill({ body: full, contentType: 'text/css' }));
        const whole = await shot(path);
        await page.unroute('**/bootstrap-italia.used.*.css');
        return cut.equals(whole);
      };
      // A rule missing from the cut differs every time; a page caught mid-layout (seen once in
      // ten runs) does not, so a difference is looked at again before it counts.
      for (const path of seen) if (!(await same(path)) && !(await same(path))) differ.push(`${width}px ${path}`);
    }
    assert.deepEqual(differ, [], 'pages that look different with the full stylesheet');
  } finally {
    await browser.close();
    await server.stop();
  }
});
