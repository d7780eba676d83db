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
    const cdp = await page.context().newCDPSession(page);
    // One picture of the whole page, as Playwright's full-page screenshot takes it, with
    // animations run to their end (those without one stopped, as its `animations: 'disabled'`),
    // no caret, and the countdown, which ticks between two pictures, hidden; but encoded with
    // Chromium's fast PNG settings (with one navigation per page and stylesheet, this test went
    // from 54 s to 36 s).
    const shot = async () => {
      await page.evaluate(async () => {
        await document.fonts.ready;
        // Images decoded, and two frames drawn since: a page is taken settled, not mid-layout.
        await Promise.all([...document.images].map((i) => i.decode().catch(() => {})));
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        for (const a of document.getAnimations()) {
          try { a.finish(); } catch { a.cancel(); }
        }
        document.activeElement?.blur();
        const c = document.getElementById('countdown');
        if (c) c.style.visibility = 'hidden';
      });
      const { cssContentSize: size } = await cdp.send('Page.getLayoutMetrics');
      const { data } = await cdp.send('Page.captureScreenshot', {
        format: 'png',
        optimizeForSpeed: true,
        captureBeyondViewport: true,
        clip: { x: 0, y: 0, width: size.width, height: size.height, scale: 1 },
      });
      return data;
    };
    // Each page is opened twice, once with each stylesheet; each time it is taken at 360 px,
    // then widened to 1280 px and taken again.
    const WIDTHS = [360, 1280];
    const pictures = async (path) => {
      await page.setViewportSize({ width: WIDTHS[0], height: 900 });
      await page.goto(server.base + path);
      const taken = [];
      for (const width of WIDTHS) {
        await page.setViewportSize({ width, height: 900 });
        taken.push(await shot());
      }
      return taken;
    };
    const differ = [];
    const compare = async (path) => {
      const cut = await pictures(path);
      await page.route('**/bootstrap-italia.used.*.css', (r) => r.fulfill({ body: full, contentType: 'text/css' }));
      const whole = await pictures(path);
      await page.unroute('**/bootstrap-italia.used.*.css');
      return WIDTHS.filter((_, i) => cut[i] !== whole[i]);
    };
    // A rule missing from the cut differs every time; a page caught mid-layout (seen once in
    // ten runs, and twice in a row once in a clean CI run) does not, so a difference counts only
    // if it is there at each of three looks.
    for (const path of seen) {
      let widths = await compare(path);
      for (let again = 0; again < 2 && widths.length; again++) {
        const now = await compare(path);
        widths = widths.filter((w) => now.includes(w));
      }
      for (const width of widths) differ.push(`${width}px ${path}`);
    }
    assert.deepEqual(differ, [], 'pages that look different with the full stylesheet');
  } finally {
    await browser.close();
    await server.stop();
  }
});
