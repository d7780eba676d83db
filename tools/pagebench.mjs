// Room page on a phone network: what a citizen's browser downloads and how soon the countdown
// is on screen, first visit (empty cache) and repeat visit (same browser profile), under
// Chromium's network emulation (default 1.6 Mbit/s down, 750 kbit/s up, 150 ms latency per
// request, as DevTools' "Fast 3G"-like profiles).
//
// Each binary named gets its own server (demo comune, fixed clock, one video appointment days
// ahead, so the room page counts down); runs alternate between them, so that both see the same
// machine. Bytes are what went over the wire (encoded, headers included) for the page and
// everything it loads until the network is quiet; the countdown time is the page's own clock
// (from navigation start) when `#countdown` has its text and is visible, and not before the
// first contentful paint.
//
// Usage: node tools/pagebench.mjs [runs] BIN [BIN...]
//   e.g. node tools/pagebench.mjs 10 /tmp/before/sportello target/debug/sportello
// Env: PAGEBENCH_KBPS (1600), PAGEBENCH_LATENCY_MS (150).
import { execFileSync } from 'node:child_process';
import { launchBrowser, startServer } from '../tests/e2e/helpers.mjs';
import { bookVideo } from '../tests/e2e/booking-helpers.mjs';

const runs = Number(process.argv[2] || 10);
const bins = process.argv.slice(3);
if (bins.length === 0) throw new Error('usage: node tools/pagebench.mjs [runs] BIN [BIN...]');
const kbps = Number(process.env.PAGEBENCH_KBPS || 1600);
const latency = Number(process.env.PAGEBENCH_LATENCY_MS || 150);

async function roomOf(bin, browser) {
  process.env.SPORTELLO_BIN = bin;
  let server = await startServer();
  const { code } = await bookVideo(await (await browser.newContext()).newPage(), server);
  await server.stop({ keep: true });
  const out = execFileSync(bin, ['--data-dir', server.dir, 'room-link', code], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
  const path = new URL(out.match(/citizen:\s+(\S+)/)[1]).pathname;
  server = await startServer([], server.dir);
  return { server, url: `${server.base}${path}` };
}

// One visit in `context`: bytes over the wire and ms to the countdown on screen.
async function visit(context, url) {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency,
    downloadThroughput: (kbps * 1000) / 8,
    uploadThroughput: (750 * 1000) / 8,
  });
  let bytes = 0;
  let requests = 0;
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; requests += 1; });
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForFunction(() => {
    const s = document.getElementById('state-countdown');
    const c = document.getElementById('countdown');
    return s && !s.hidden && c && c.textContent.trim() !== '' && c.getBoundingClientRect().height > 0;
  }, null, { polling: 'raf', timeout: 60000 });
  const seen = await page.evaluate(() => performance.now());
  // Seen in the document is not yet on screen: the first paint (after the render-blocking
  // stylesheets) may come later.
  const painted = await page.evaluate(() => new Promise((resolve) => {
    const find = () => performance.getEntriesByName('first-contentful-paint')[0];
    if (find()) { resolve(find().startTime); return; }
    new PerformanceObserver(() => { if (find()) resolve(find().startTime); }).observe({ type: 'paint', buffered: true });
  }));
  const ms = Math.max(seen, painted);
  await page.waitForLoadState('networkidle');
  await page.close();
  return { bytes, requests, ms };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const range = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

const browser = await launchBrowser();
const rooms = [];
try {
  for (const bin of bins) rooms.push({ bin, ...(await roomOf(bin, browser)), first: [], repeat: [] });
  for (let i = 0; i < runs; i++) {
    for (const r of rooms) {
      const context = await browser.newContext();
      r.first.push(await visit(context, r.url));
      r.repeat.push(await visit(context, r.url));
      await context.close();
    }
  }
  console.log(`room page at ${kbps} kbit/s down, ${latency} ms latency; ${runs} runs each, alternating; median (range)`);
  for (const r of rooms) {
    for (const kind of ['first', 'repeat']) {
      const v = r[kind];
      console.log(`${r.bin} ${kind.padEnd(6)} bytes ${median(v.map((x) => x.bytes)).toFixed(0)} (${range(v.map((x) => x.bytes))}) requests ${median(v.map((x) => x.requests))} countdown ms ${median(v.map((x) => x.ms)).toFixed(0)} (${range(v.map((x) => x.ms))})`);
    }
  }
} finally {
  await browser.close();
  for (const r of rooms) await r.server.stop();
}
