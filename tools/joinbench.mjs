// How fast a call starts, with two real headless Chromium clients (fake camera and microphone)
// through the real server, in three cases, each repeated and alternated:
//  - both arrive together: both pages reload at the same moment (each goes back into the
//    room by itself, as after a reload); per page, navigation to the first decoded remote frame;
//  - one waits, the other arrives: the operator reloads and waits in the room (its media
//    connection set up); then the citizen reloads: the citizen's navigation to its first frame,
//    and the operator's time from the citizen's `join` (peer_joined) to its first new frame;
//  - a reload mid-call: the citizen reloads with the operator in: navigation to first frame.
// With --janus, instead: both arrive together, interleaved round by round with Janus 1.1.2
// (Debian `janus`, its VideoRoom plugin and its own client janus.js) on the same two browsers,
// both pages asking for 640×480 video; each page navigates from a blank page to the room at the
// same moment. Janus's ICE needs the network namespace of tools/netns.sh (root).
// Build first (cargo build --release --bin sportello).
// Usage: SPORTELLO_BIN=target/release/sportello node tools/joinbench.mjs [rounds]
//        SPORTELLO_BIN=target/release/sportello tools/netns.sh node tools/joinbench.mjs --janus [rounds]
import { rmSync } from 'node:fs';
import { freePort, launchBrowser } from '../tests/e2e/helpers.mjs';
import { decoded, enter, received, roomOpenNow } from '../tests/e2e/call-helpers.mjs';
import { startJanus } from './janus/janus.mjs';

const withJanus = process.argv.includes('--janus');
const rounds = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) || 10);
const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off', '--worker-interval', '3600'];

// The page's own steps (room.js's performance marks), ms after navigation start, the first of
// each; kept per case to show where the time goes.
const steps = {};
async function keepSteps(name, page, frameMs, packetMs) {
  const marks = await page.evaluate(() => performance.getEntriesByType('mark').filter((m) => m.name.startsWith('sportello:')).map((m) => [m.name.slice(10), m.startTime])).catch(() => []);
  const first = {};
  for (const [n, t] of marks) if (!(n in first)) first[n] = t;
  const nav = await page.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return n ? { response: n.responseStart, html: n.responseEnd, 'dom interactive': n.domInteractive } : {}; }).catch(() => ({}));
  Object.assign(first, nav);
  first.frame = frameMs;
  if (packetMs !== undefined) first['video packet'] = packetMs;
  (steps[name] ||= []).push(first);
}

// Reloads `page` (or navigates it to `url`) and resolves with ms from then to its first
// decoded remote frame.
async function reloadToFrame(page, name, url) {
  const t0 = Date.now();
  if (url) await page.goto(url, { waitUntil: 'commit' });
  else await page.reload({ waitUntil: 'commit' });
  let packet;
  for (;;) {
    const { frames, packets } = await received(page);
    if (packets > 0 && packet === undefined) packet = Date.now() - t0;
    if (frames > 0) {
      const ms = Date.now() - t0;
      if (name) await keepSteps(name, page, ms, packet);
      return ms;
    }
    if (Date.now() - t0 > 30000) throw new Error('no frame in 30 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

// On the operator's page: ms from the next peer_joined to the next newly decoded frame.
async function armPeerJoined(page) {
  await page.evaluate(() => {
    window.__joinToFrame = new Promise((resolve) => {
      document.addEventListener('sportello:peer-joined', async () => {
        const t0 = performance.now();
        const count = async () => {
          let n = 0;
          (await window.sportelloPc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded || 0; });
          return n;
        };
        const before = await count();
        for (;;) {
          if ((await count()) > before) { resolve(performance.now() - t0); return; }
          await new Promise((r) => setTimeout(r, 5));
        }
      }, { once: true });
    });
  });
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const show = (name, xs) => console.log(`joinbench: ${name}: median ${median(xs).toFixed(0)} ms, range ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} ms over ${xs.length}`);

// Both pages of the comparison ask for the same 640×480 video, whatever the page's own request.
const VGA = () => {
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => gum(c && c.video ? { ...c, video: { width: { exact: 640 }, height: { exact: 480 } } } : c);
};

const a = await launchBrowser();
const b = await launchBrowser();
const { server, dir, paths } = await roomOpenNow(a, MEDIA);
const janus = withJanus ? await startJanus(await freePort(), await freePort()) : null;
try {
  const contexts = [await a.newContext(), await b.newContext()];
  if (withJanus) for (const c of contexts) await c.addInitScript(VGA);
  const citizen = await contexts[0].newPage();
  const operator = await contexts[1].newPage();
  await enter(citizen, `${server.base}${paths.citizen}`);
  await enter(operator, `${server.base}${paths.operator}`);
  while ((await decoded(citizen)) < 30 || (await decoded(operator)) < 30) await new Promise((r) => setTimeout(r, 200));

  if (withJanus) await compareWithJanus(citizen, operator, server, paths, janus);
  else await cases(citizen, operator);
  for (const [name, list] of Object.entries(steps)) {
    const names = [...new Set(list.flatMap((x) => Object.keys(x)))];
    const line = names.map((n) => [n, median(list.filter((x) => n in x).map((x) => x[n]))]).sort((x, y) => x[1] - y[1]).map(([n, t]) => `${n} ${t.toFixed(0)}`).join(', ');
    console.log(`joinbench: ${name}, median ms after navigation: ${line}`);
  }
} finally {
  if (janus) await janus.stop();
  await a.close();
  await b.close();
  await server.stop({ keep: true });
  rmSync(dir, { recursive: true, force: true });
}

// Both arrive together, round by round: Sportello, then Janus, on the same two pages.
async function compareWithJanus(citizen, operator, server, paths, janus) {
  const ours = [];
  const theirs = [];
  const pause = () => new Promise((r) => setTimeout(r, 1000));
  const blank = async () => { await Promise.all([citizen.goto('about:blank'), operator.goto('about:blank')]); await pause(); };
  for (let i = 0; i < rounds; i++) {
    await blank();
    ours.push(...(await Promise.all([reloadToFrame(citizen, 'sportello', `${server.base}${paths.citizen}`), reloadToFrame(operator, 'sportello', `${server.base}${paths.operator}`)])));
    await pause();
    await blank();
    theirs.push(...(await Promise.all([reloadToFrame(citizen, 'janus', janus.url), reloadToFrame(operator, 'janus', janus.url)])));
    await pause();
  }
  show('both arrive together, Sportello, navigation to first remote frame (each page)', ours);
  show('both arrive together, Janus, navigation to first remote frame (each page)', theirs);
  const ratios = [];
  for (let i = 0; i < rounds; i++) ratios.push(median(ours.slice(2 * i, 2 * i + 2)) / median(theirs.slice(2 * i, 2 * i + 2)));
  console.log(`joinbench: Sportello / Janus per round: median ${median(ratios).toFixed(2)}, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} over ${ratios.length}`);
  const size = await operator.evaluate(() => { const v = document.querySelector('video'); return v ? `${v.videoWidth}×${v.videoHeight}` : '?'; });
  console.log(`joinbench: the last Janus page showed ${size} video`);
}

// The three cases on Sportello alone.
async function cases(citizen, operator) {
  const together = [];
  const arriving = [];
  const waiting = [];
  const reload = [];
  for (let i = 0; i < rounds; i++) {
    together.push(...(await Promise.all([reloadToFrame(citizen, 'together'), reloadToFrame(operator, 'together')])));
    await new Promise((r) => setTimeout(r, 1000));

    await operator.reload({ waitUntil: 'load' });
    await operator.waitForFunction(() => window.sportelloPc && window.sportelloPc.connectionState === 'connected', null, { timeout: 15000 }).catch(() => {});
    // The citizen's reload makes it leave; the operator then waits for its return.
    await new Promise((r) => setTimeout(r, 1000));
    await armPeerJoined(operator);
    arriving.push(await reloadToFrame(citizen, 'arriving'));
    waiting.push(await operator.evaluate(() => window.__joinToFrame));
    await new Promise((r) => setTimeout(r, 1000));

    reload.push(await reloadToFrame(citizen, 'reload'));
    await new Promise((r) => setTimeout(r, 1000));
  }
  show('both arrive together, navigation to first remote frame (each page)', together);
  show('one waits, the arriving side: navigation to first remote frame', arriving);
  show('one waits, the waiting side: the other\'s join to first remote frame', waiting);
  show('reload mid-call: navigation to first remote frame', reload);
}
