// Call benchmark with two real headless Chromium clients (fake camera and microphone) through
// the real server (build it first: cargo build --release --bin sportello):
//  - server CPU time per forwarded packet, from the server's own /metrics
//    (process_cpu_seconds_total and sportello_relay_packets_forwarded_total) over a window;
//  - join time: page navigation (a reload, so no clicks) to the first decoded remote frame, with
//    the other side already in the room; median of several.
// Usage: SPORTELLO_BIN=target/release/sportello node tools/callbench.mjs [seconds] [joins] [media-udp] [warm-up]
// (media-udp: 127.0.0.1:0 by default, a port per connection; e.g. 127.0.0.1:47000 for one shared port;
// warm-up: seconds of call before the CPU window, 10 by default, so that the window sees a call
// in its steady state and not its first seconds, while Chromium's bitrate still ramps up (fewer
// packets per video frame, for the same wake-ups of the relay); 0 measures from the first frames)
import { rmSync } from 'node:fs';
import { launchBrowser } from '../tests/e2e/helpers.mjs';
import { decoded, roomOpenNow } from '../tests/e2e/call-helpers.mjs';

const seconds = Number(process.argv[2] || 20);
const joins = Number(process.argv[3] || 7);
// The background worker's timer is set long so that only the call costs CPU.
const MEDIA = ['--media-udp', process.argv[4] || '127.0.0.1:0', '--media-tcp', 'off', '--worker-interval', '3600'];
const warmup = Number(process.argv[5] ?? 10);

async function metric(admin, name) {
  const text = await (await fetch(`${admin}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
}

const a = await launchBrowser();
const b = await launchBrowser();
const { server, dir, paths } = await roomOpenNow(a, MEDIA);
const [citizenPath, operatorPath] = [paths.citizen, paths.operator];
try {
  const citizen = await (await a.newContext()).newPage();
  const operator = await (await b.newContext()).newPage();
  for (const [page, path] of [[citizen, citizenPath], [operator, operatorPath]]) {
    await page.goto(`${server.base}${path}`);
    await page.getByRole('button', { name: 'Entra nella stanza' }).click();
    await page.getByRole('button', { name: 'Collegati' }).click();
  }
  while ((await decoded(citizen)) < 30 || (await decoded(operator)) < 30) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, warmup * 1000));

  // CPU per forwarded packet, over the window.
  const cpu0 = await metric(server.admin, 'process_cpu_seconds_total');
  const pk0 = await metric(server.admin, 'sportello_relay_packets_forwarded_total');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = await metric(server.admin, 'process_cpu_seconds_total');
  const pk1 = await metric(server.admin, 'sportello_relay_packets_forwarded_total');
  const pps = (pk1 - pk0) / seconds;
  console.log(`callbench: after ${warmup} s of call, ${pk1 - pk0} packets forwarded in ${seconds} s (${pps.toFixed(0)} packets/s); server CPU ${(cpu1 - cpu0).toFixed(2)} s: ${(((cpu1 - cpu0) * 1e6) / (pk1 - pk0)).toFixed(1)} µs per forwarded packet`);

  // Join time: the citizen's page reloads with the operator already in; navigation to the first
  // decoded remote frame.
  const times = [];
  for (let i = 0; i < joins; i++) {
    const t0 = Date.now();
    await citizen.reload();
    while ((await decoded(citizen)) < 1) await new Promise((r) => setTimeout(r, 10));
    times.push(Date.now() - t0);
    await new Promise((r) => setTimeout(r, 1000));
  }
  times.sort((x, y) => x - y);
  console.log(`callbench: join time (navigation to first decoded remote frame) over ${joins}: median ${times[Math.floor(times.length / 2)]} ms, min ${times[0]} ms, max ${times[times.length - 1]} ms`);
} finally {
  await a.close();
  await b.close();
  await server.stop({ keep: true });
  rmSync(dir, { recursive: true, force: true });
}
