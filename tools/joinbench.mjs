// How fast a call starts, with two real headless Chromium clients (fake camera and microphone)
// through the real server, in three cases, each repeated and alternated:
//  - both arrive together: both pages reload at the same moment (each goes back into the
//    room by itself, as after a reload); per page, navigation to the first remote frame (decoded,
//    in the page's video element: PROBE below);
//  - one waits, the other arrives: the operator reloads and waits in the room (its media
//    connection set up); then the citizen reloads: the citizen's navigation to its first frame,
//    and the operator's time from the citizen's `join` (peer_joined) to its first new frame;
//  - a reload mid-call: the citizen reloads with the operator in: navigation to first frame.
// With --janus, instead: both arrive together, interleaved round by round with Janus 1.1.2 (each
// going first in every other round)
// (Debian `janus`, its VideoRoom plugin and its own client janus.js) on the same two browsers,
// both pages asking for 640×480 video; each page navigates from a blank page to the room at the
// same moment. Janus's ICE needs the network namespace of tools/netns.sh (root).
// --rooms 2 (with --janus): two rooms at once, four browsers, every page navigating at the same
// moment. --cpu (with --janus): instead of the join, the server's CPU time per forwarded packet in
// a call, Sportello and Janus alternately on the same browsers: after the pages decode, 10 s of
// call, then a window of 20 s; the CPU time is the server process's (/proc/PID/stat, user +
// system), the packets are those the pages received from it (every inbound RTP stream), so the
// same count for both servers.
// Build first (cargo build --release --bin sportello).
// Usage: SPORTELLO_BIN=target/release/sportello node tools/joinbench.mjs [rounds]
//        SPORTELLO_BIN=target/release/sportello tools/netns.sh node tools/joinbench.mjs --janus [--rooms 2] [--cpu] [rounds]
// Either: --media-udp 127.0.0.1:47000 (the relay on one shared port; a port per connection by default).
// Either: --rtt MS (without --janus): the pages reach the server's web listener through a TCP
// proxy in this process that holds every byte MS/2 each way and a new connection MS before its
// first byte goes on (TCP's own handshake): a phone network's round trip, for the page and its
// socket (the media go direct).
// Either: --https (the server over TLS with its development certificate, as by default, instead
// of plain HTTP: the browser may then use HTTP/2, and open the room's socket on the page's
// connection).
// Either: --steps FILE (each page's steps and its room as a line of JSON, appended to FILE).
// Either: --processes (with --janus): the CPU time each kind of process used during each round's
// joins (from the navigation to the last page's first frame; /proc, user + system): the
// server, Janus, this tool (which also serves Janus's page and passes its requests on), and
// Chromium's by type (browser, renderer, GPU, network, audio, video capture), medians per round.
// With --cpu, instead: the same, per second of call during each round's window (the pages' own
// cost of a call: what a phone's battery pays).
import { appendFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { freePort, launchBrowser } from '../tests/e2e/helpers.mjs';
import { decoded, enter, roomsOpenNow } from '../tests/e2e/call-helpers.mjs';
import { startJanus } from './janus/janus.mjs';

const args = process.argv.slice(2);
const withJanus = args.includes('--janus');
const cpu = args.includes('--cpu');
const option = (name, otherwise) => (args.includes(name) ? args[args.indexOf(name) + 1] : otherwise);
const roomCount = Number(option('--rooms', 1));
// The relay's UDP address: port 0, a port per connection; e.g. 127.0.0.1:47000, one shared port
// (what docs/deploy.md recommends).
const mediaUdp = option('--media-udp', '127.0.0.1:0');
const rounds = Number(args.find((a, i) => !a.startsWith('--') && !['--rooms', '--media-udp', '--rtt', '--steps'].includes(args[i - 1])) || 10);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds: ${rounds}`);
const rtt = Number(option('--rtt', 0));
if (rtt && withJanus) throw new Error('--rtt goes without --janus');
if ((roomCount !== 1 || cpu) && !withJanus) throw new Error('--rooms and --cpu go with --janus');
if (!(roomCount >= 1 && roomCount <= 2)) throw new Error('--rooms: 1 or 2');
const WARM_UP_MS = 10000;
const WINDOW_MS = 20000;
const https = args.includes('--https');
// --steps FILE: each page's steps (below) appended to FILE as a line of JSON, to find what a slow
// page waited for; the tool prints only their medians.
const stepsFile = option('--steps', undefined);
const byProcess = args.includes('--processes');
if (byProcess && !withJanus) throw new Error('--processes goes with --janus');
// The development certificate is trusted by nobody: the tool's own requests (booking through
// the API) and the pages accept it, on loopback only.
if (https) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const MEDIA = ['--media-udp', mediaUdp, '--media-tcp', 'off', '--worker-interval', '3600', ...(https ? ['--https-listen', `127.0.0.1:${await freePort()}`] : [])];

// The page's own steps (room.js's performance marks), ms after navigation start, the first of
// each; kept per case to show where the time goes.
const steps = {};
const sizes = {};
async function keepSteps(name, page, frameMs) {
  const marks = await page.evaluate(() => performance.getEntriesByType('mark').filter((m) => m.name.startsWith('sportello:')).map((m) => [m.name.slice(10), m.startTime])).catch(() => []);
  const first = {};
  for (const [n, t] of marks) if (!(n in first)) first[n] = t;
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const out = n ? { response: n.responseStart, html: n.responseEnd, 'dom interactive': n.domInteractive } : {};
    for (const p of performance.getEntriesByType('paint')) out[p.name] = p.startTime;
    // When the page's script and stylesheets had arrived (from the cache or the network).
    for (const r of performance.getEntriesByType('resource')) {
      const m = r.name.match(/(room|bootstrap-italia|sportello)[^/]*\.(js|css)/);
      if (m) out[`${m[1]}.${m[2]} loaded`] = r.responseEnd;
    }
    return out;
  }).catch(() => ({}));
  Object.assign(first, nav);
  first.frame = frameMs;
  const packet = await page.evaluate(() => window.__joinbench.packet).catch(() => undefined);
  if (packet !== undefined) first['video packet'] = packet;
  (steps[name] ||= []).push(first);
  // The first remote frame's size: the sender's encoder may have started below its camera's.
  const size = await page.evaluate(() => window.__joinbench.size).catch(() => undefined);
  (sizes[name] ||= {})[size] = (sizes[name][size] || 0) + 1;
  // With the page's time origin (ms since the epoch), to line its steps up with the server's log.
  const origin = await page.evaluate(() => performance.timeOrigin).catch(() => undefined);
  // The page's room (pages 2k and 2k + 1 are room k's).
  const room = Math.floor(pages.indexOf(page) / 2);
  if (stepsFile) appendFileSync(stepsFile, `${JSON.stringify({ name, origin, room, size, ...first })}\n`);
}

// Reloads `page` (or navigates it to `url`) and resolves with ms from its navigation to its first
// remote frame: the moment the frame, decoded, reached the page's remote video element (its
// `resize` event, which PROBE records in the page). Nothing polls the page meanwhile: the tool
// takes no CPU from the join it measures.
async function reloadToFrame(page, name, url) {
  if (url) await page.goto(url, { waitUntil: 'commit' });
  else await page.reload({ waitUntil: 'commit' });
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no frame in 30 s')), 30000); });
  try {
    const ms = await Promise.race([page.evaluate(() => window.__joinbench.frame), timeout]);
    if (name) await keepSteps(name, page, ms);
    return ms;
  } finally {
    clearTimeout(timer);
  }
}

// In every page, before its own script, on Sportello's room page and on the Janus page alike:
// `frame`, a promise of the time (ms after navigation) when the video element with id `remote`
// learns the first remote frame's size, i.e. has the frame; and `packet`, when the page's first
// remote video track unmutes, i.e. its first packet arrived.
const PROBE = () => {
  const probe = { packet: undefined, size: undefined };
  probe.frame = new Promise((resolve) => {
    document.addEventListener('resize', (e) => {
      if (e.target.id === 'remote' && e.target.videoWidth > 0 && probe.size === undefined) {
        probe.size = `${e.target.videoWidth}×${e.target.videoHeight}`;
        resolve(performance.now());
      }
    }, true);
  });
  const Pc = window.RTCPeerConnection;
  if (Pc) {
    window.RTCPeerConnection = class extends Pc {
      constructor(...args) {
        super(...args);
        this.addEventListener('track', (e) => {
          if (e.track.kind !== 'video') return;
          e.track.addEventListener('unmute', () => { if (probe.packet === undefined) probe.packet = performance.now(); }, { once: true });
        });
      }
    };
  }
  window.__joinbench = probe;
};

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

// Two browsers a room: the citizen's and the operator's.
const browsers = [];
// Their pages (made below), page 2k being room k's citizen, 2k + 1 its operator.
const pages = [];
for (let i = 0; i < 2 * roomCount; i++) browsers.push(await launchBrowser());
const { server, dir, rooms } = await roomsOpenNow(browsers[0], MEDIA, roomCount);
const janus = withJanus ? await startJanus(await freePort(), await freePort()) : null;
try {
  for (const b of browsers) {
    const context = await b.newContext({ ignoreHTTPSErrors: true });
    await context.addInitScript(PROBE);
    if (withJanus) await context.addInitScript(VGA);
    pages.push(await context.newPage());
  }
  const base = rtt ? await delayingProxy(server.base, rtt) : server.base;
  const ourUrls = rooms.flatMap((r) => [`${base}${r.paths.citizen}`, `${base}${r.paths.operator}`]);
  const janusUrls = rooms.flatMap((_, k) => [`${janus?.url}?room=${1234 + k}`, `${janus?.url}?room=${1234 + k}`]);
  for (const [k, page] of pages.entries()) await enter(page, ourUrls[k]);
  for (const page of pages) while ((await decoded(page)) < 30) await new Promise((r) => setTimeout(r, 200));

  if (withJanus && cpu) await cpuWithJanus(pages, ourUrls, janusUrls, server, janus);
  else if (withJanus) await compareWithJanus(pages, ourUrls, janusUrls);
  else await cases(pages[0], pages[1]);
  for (const [name, list] of Object.entries(steps)) {
    const names = [...new Set(list.flatMap((x) => Object.keys(x)))];
    const line = names.map((n) => [n, median(list.filter((x) => n in x).map((x) => x[n]))]).sort((x, y) => x[1] - y[1]).map(([n, t]) => `${n} ${t.toFixed(0)}`).join(', ');
    console.log(`joinbench: ${name}, median ms after navigation: ${line}`);
    console.log(`joinbench: ${name}, the first remote frame's size: ${Object.entries(sizes[name]).map(([z, k]) => `${z} ×${k}`).join(', ')}`);
  }
} finally {
  if (janus) await janus.stop();
  for (const b of browsers) await b.close();
  await server.stop({ keep: true });
  rmSync(dir, { recursive: true, force: true });
}

// A TCP proxy in front of `base` (its scheme and host kept, another port) that delays each way
// by rtt/2 and a new connection's first byte by one more rtt; resolves with its base URL.
async function delayingProxy(base, rttMs) {
  const target = new URL(base);
  const oneWay = rttMs / 2;
  const later = (f) => setTimeout(f, oneWay);
  const proxy = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(Number(target.port), target.hostname);
    upstream.setNoDelay(true);
    const opened = Date.now() + rttMs;
    // Bytes from the client wait for "the handshake" first, then go on oneWay later, in order.
    client.on('data', (d) => setTimeout(() => upstream.write(d), Math.max(0, opened - Date.now()) + oneWay));
    upstream.on('data', (d) => later(() => client.write(d)));
    client.on('end', () => later(() => upstream.end()));
    upstream.on('end', () => later(() => client.end()));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  proxy.unref();
  return `${target.protocol}//127.0.0.1:${proxy.address().port}`;
}

function pause() {
  return new Promise((r) => setTimeout(r, 1000));
}
async function blank(pages) {
  await Promise.all(pages.map((p) => p.goto('about:blank')));
  await pause();
}

// Every process of the run's kinds, with its CPU time so far (s): `server` (Sportello), `janus`,
// `node` (this tool), and Chromium's by its --type (`browser` without one).
function processTimes() {
  const out = {};
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      // Chromium rewrites its children's command lines into one string.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
      let kind;
      if (cmd[0].includes('sportello')) kind = 'server';
      else if (cmd[0].includes('janus')) kind = 'janus';
      else if (Number(pid) === process.pid) kind = 'node';
      else if (cmd[0].includes('chrom')) {
        const type = cmd.find((a) => a.startsWith('--type='));
        const sub = cmd.find((a) => a.startsWith('--utility-sub-type='));
        kind = type ? type.slice(7) + (sub ? `:${sub.slice(19).split('.')[0]}` : '') : 'browser';
      } else continue;
      out[pid] = [kind, cpuSeconds(pid)];
    } catch { /* gone meanwhile */ }
  }
  return out;
}
// ms of CPU per kind of process between two `processTimes`.
function processCpu(before, after) {
  const by = {};
  for (const [pid, [kind, s]] of Object.entries(after)) by[kind] = (by[kind] || 0) + (s - (before[pid] ? before[pid][1] : 0)) * 1000;
  return by;
}
// Prints `processCpu`s by server name (lists of rounds): each kind's median, and the median total.
function showProcessCpu(cpuOf, what) {
  for (const [name, list] of Object.entries(cpuOf)) {
    const kinds = [...new Set(list.flatMap((x) => Object.keys(x)))].sort();
    const total = median(list.map((x) => Object.values(x).reduce((a, b) => a + b, 0)));
    console.log(`joinbench: ${name}, ${what}: ${kinds.map((k) => `${k} ${median(list.map((x) => x[k] || 0)).toFixed(0)}`).join(', ')}; all ${total.toFixed(0)}`);
  }
}
// Navigates every page to its URL at once; each page's time to its first frame, and (with
// --processes) the CPU time used meanwhile, by kind of process, into `cpuOf`.
async function joinRound(pages, urls, name, cpuOf) {
  const before = byProcess ? processTimes() : null;
  const times = await Promise.all(pages.map((p, k) => reloadToFrame(p, name, urls[k])));
  if (before) cpuOf.push(processCpu(before, processTimes()));
  return times;
}

// Both arrive together, round by round, on the same pages: Sportello first in even rounds, Janus
// first in odd ones, so that whatever the round before leaves behind (a call still being torn
// down, a warmer cache) weighs on both alike.
async function compareWithJanus(pages, ourUrls, janusUrls) {
  const ours = [];
  const theirs = [];
  const cpuOf = { sportello: [], janus: [] };
  const n = pages.length;
  for (let i = 0; i < rounds; i++) {
    const sides = [
      async () => ours.push(...(await joinRound(pages, ourUrls, 'sportello', cpuOf.sportello))),
      async () => theirs.push(...(await joinRound(pages, janusUrls, 'janus', cpuOf.janus))),
    ];
    if (i % 2 === 1) sides.reverse();
    for (const side of sides) {
      await blank(pages);
      await side();
      await pause();
    }
  }
  if (byProcess) showProcessCpu(cpuOf, 'CPU ms per round by process (medians)');
  const rooms = `${n / 2} room${n > 2 ? 's' : ''}`;
  show(`both arrive together, ${rooms}, Sportello, navigation to first remote frame (each page)`, ours);
  show(`both arrive together, ${rooms}, Janus, navigation to first remote frame (each page)`, theirs);
  const ratios = [];
  for (let i = 0; i < rounds; i++) ratios.push(median(ours.slice(n * i, n * i + n)) / median(theirs.slice(n * i, n * i + n)));
  console.log(`joinbench: ${rooms}, Sportello / Janus per round: median ${median(ratios).toFixed(2)}, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} over ${ratios.length}`);
  // Each round's, so that runs can be pooled.
  console.log(`joinbench: ${rooms}, Sportello / Janus each round: ${ratios.map((r) => r.toFixed(3)).join(' ')}`);
  const size = await pages[1].evaluate(() => { const v = document.querySelector('video'); return v ? `${v.videoWidth}×${v.videoHeight}` : '?'; });
  console.log(`joinbench: the last Janus page showed ${size} video`);
}

// A process's CPU time so far, in seconds (user + system, /proc/PID/stat).
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// RTP packets the page received on its current connection, by kind (Janus's page: its
// subscriber connection, the one carrying the other's media).
async function packetsIn(page) {
  return page.evaluate(async () => {
    const n = { audio: 0, video: 0 };
    if (window.sportelloPc) (await window.sportelloPc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind in n) n[s.kind] += s.packetsReceived || 0; });
    return n;
  });
}
// The pages' packets, summed: every stream, and video alone.
async function packetsOf(pages) {
  const all = await Promise.all(pages.map(packetsIn));
  return { total: all.reduce((a, n) => a + n.audio + n.video, 0), video: all.reduce((a, n) => a + n.video, 0) };
}

// CPU per forwarded packet, round by round on the same pages, each going first in every other
// round (as in compareWithJanus).
async function cpuWithJanus(pages, ourUrls, janusUrls, server, janus) {
  const per = { sportello: [], janus: [] };
  const rates = { sportello: [], janus: [] };
  const videoRates = { sportello: [], janus: [] };
  const cpuOf = { sportello: [], janus: [] };
  for (let i = 0; i < rounds; i++) {
    const sides = [['sportello', ourUrls, server.pid], ['janus', janusUrls, janus.pid]];
    if (i % 2 === 1) sides.reverse();
    for (const [name, urls, pid] of sides) {
      await blank(pages);
      await Promise.all(pages.map((p, k) => reloadToFrame(p, undefined, urls[k])));
      await new Promise((r) => setTimeout(r, WARM_UP_MS));
      const c0 = cpuSeconds(pid);
      const p0 = await packetsOf(pages);
      const t0 = byProcess ? processTimes() : null;
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      const c1 = cpuSeconds(pid);
      const p1 = await packetsOf(pages);
      if (t0) {
        const by = processCpu(t0, processTimes());
        for (const k of Object.keys(by)) by[k] /= WINDOW_MS / 1000;
        cpuOf[name].push(by);
      }
      per[name].push(((c1 - c0) * 1e6) / (p1.total - p0.total));
      rates[name].push(((p1.total - p0.total) * 1000) / WINDOW_MS);
      // The same mix for both servers, or the comparison is of different work: a server whose
      // feedback fails the browsers' congestion control gets mostly audio, cheaper per packet.
      videoRates[name].push(((p1.video - p0.video) * 1000) / WINDOW_MS);
    }
    const line = (name) => `${per[name][i].toFixed(1)} µs/packet at ${rates[name][i].toFixed(0)} packets/s (video ${videoRates[name][i].toFixed(0)})`;
    console.log(`joinbench: round ${i + 1}: Sportello ${line('sportello')}, Janus ${line('janus')}`);
  }
  const rooms = `${pages.length / 2} room${pages.length > 2 ? 's' : ''}`;
  for (const name of ['sportello', 'janus']) {
    const xs = per[name];
    console.log(`joinbench: ${rooms}, ${name} CPU per forwarded packet: median ${median(xs).toFixed(1)} µs, range ${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} µs; packets/s median ${median(rates[name]).toFixed(0)}, of them video ${median(videoRates[name]).toFixed(0)}`);
  }
  if (byProcess) showProcessCpu(cpuOf, 'CPU ms per second of call by process (medians)');
  const ratios = per.sportello.map((x, i) => x / per.janus[i]);
  console.log(`joinbench: ${rooms}, CPU per packet Sportello / Janus per round: median ${median(ratios).toFixed(2)}, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} over ${ratios.length}`);
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
