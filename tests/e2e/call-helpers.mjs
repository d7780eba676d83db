// What the call tests share: entering a room page, waiting for a condition, and reading the
// page's peer connection statistics (what it decodes, which candidate pair it uses).
import { execFileSync } from 'node:child_process';
import { binary, startServer } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';

export async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function enter(page, url) {
  await page.goto(url);
  await page.getByRole('button', { name: 'Entra nella stanza' }).click();
  await page.getByRole('button', { name: 'Collegati' }).click();
}

// The room's paths for the citizen and the operator (`sportello room-link`, server stopped).
export function roomPaths(dir, code) {
  const out = execFileSync(binary(), ['--data-dir', dir, 'room-link', code], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
  return {
    citizen: new URL(out.match(/citizen:\s+(\S+)/)[1]).pathname,
    operator: new URL(out.match(/operator:\s+(\S+)/)[1]).pathname,
  };
}

// Video decoded, audio received, and the selected pair: its state, the remote end, and the type
// of the local candidate ("relay" when the browser goes through TURN).
export async function stats(page) {
  return page.evaluate(async () => {
    const pc = window.sportelloPc;
    if (!pc) return null;
    const report = await pc.getStats();
    const out = { video: null, audio: null, pair: null };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.video = { framesDecoded: s.framesDecoded || 0 };
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio = { packets: s.packetsReceived || 0 };
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = report.get(s.selectedCandidatePairId);
        const l = p && report.get(p.localCandidateId);
        const r = p && report.get(p.remoteCandidateId);
        if (p && l && r) out.pair = { state: p.state, remote: `${r.address}:${r.port}`, local: l.candidateType };
      }
    });
    return out;
  });
}

// Both pages decode the other's video and receive its audio.
export async function bothDecode(citizen, operator) {
  for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
    await until(`${who} decoding video`, async () => {
      const s = await stats(page);
      return s && s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packets > 0 && s.pair ? s : null;
    });
  }
}

// A video appointment booked through the pages with `browser`, and the server started again
// on its data with the clock at the appointment's start (the room open), with `media` flags:
// the server, its data folder, the room's paths (`citizen`, `operator`) and the start.
export async function roomOpenNow(browser, media) {
  const { server, dir, rooms, start } = await roomsOpenNow(browser, media, 1);
  return { server, dir, paths: rooms[0].paths, code: rooms[0].code, start };
}

// As roomOpenNow, with `n` video appointments that start at the same time, each with a service
// of its own (the demo's services have one seat a slot): `rooms` holds each one's `paths` and
// `code`. One room is Edilizia privata's first free video slot.
export async function roomsOpenNow(browser, media, n) {
  let server = await startServer(media);
  const dir = server.dir;
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  const codes = [];
  let start;
  if (n === 1) {
    const booked = await bookVideo(page, server);
    codes.push(booked.code);
    start = booked.start;
  } else {
    // Each service's free video starts (1, the mayor's, confirms by hand: left out); the first
    // start that `n` services share.
    const services = [];
    for (let id = 2; id <= 12; id++) {
      const r = await fetch(`${server.base}/api/servizi/${id}/orari`);
      if (r.ok) services.push([id, (await r.json()).filter((s) => s.modes.includes('video')).map((s) => s.start)]);
    }
    const at = [...new Set(services.flatMap(([, starts]) => starts))].sort().find((t) => services.filter(([, starts]) => starts.includes(t)).length >= n);
    if (!at) throw new Error(`no start that ${n} services offer for video`);
    for (const [id] of services.filter(([, starts]) => starts.includes(at)).slice(0, n)) {
      codes.push((await bookVideo(page, server, (s) => s.start === at, { service: id })).code);
    }
    start = new Date(at);
  }
  await server.stop({ keep: true });
  const rooms = codes.map((code) => ({ code, paths: roomPaths(dir, code) }));
  server = await startServer([...media, '--start-clock-at', start.toISOString()], dir);
  return { server, dir, rooms, start };
}

// Video frames decoded and packets received from the other side on the page's current peer
// connection, and video frames the page sent on it (0 while it has none, or while the page is
// navigating).
export async function received(page) {
  return page.evaluate(async () => {
    const pc = window.sportelloPc;
    const out = { frames: 0, packets: 0, sent: 0 };
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') { out.frames = s.framesDecoded || 0; out.packets = s.packetsReceived || 0; }
      if (s.type === 'outbound-rtp' && s.kind === 'video') out.sent += s.framesSent || 0;
    });
    return out;
  }).catch(() => ({ frames: 0, packets: 0, sent: 0 }));
}

// Frames decoded from the other side on the page's current peer connection.
export async function decoded(page) {
  return (await received(page)).frames;
}
