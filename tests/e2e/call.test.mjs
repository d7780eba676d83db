// The decisive test: two headless Chromium instances (citizen and operator, fake camera and
// microphone) join one room through the real server; each decodes the other's video and
// receives audio; each browser's selected candidate pair has the server as its remote end
// (media went through the relay, not peer to peer); the server's counters show the packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { freePort, launchBrowser, startServer, violations } from './helpers.mjs';
import { enter, roomOpenNow, until } from './call-helpers.mjs';

// The relay's sockets on loopback, in a port range of their own (as a firewall would open).
const PORTS = [40000 + Math.floor(Math.random() * 500) * 20];
PORTS.push(PORTS[0] + 19);
// scripts/test runs this file a second time on the webrtc engine (the tests of media).
const RTC_ENGINE = process.env.SPORTELLO_MEDIA_ENGINE !== 'webrtc';
// On the rtc engine (the default), on every address (0.0.0.0) as by default: each datagram's own
// address answers it (the rtc engine on one address is tested by tests/tests/relay.rs).
const MEDIA = ['--media-udp', RTC_ENGINE ? '0.0.0.0:0' : '127.0.0.1:0', '--media-tcp', 'off', '--media-ports', `${PORTS[0]}-${PORTS[1]}`];
// Or one UDP port and one TCP port that every connection shares (just above the range).
const SHARED_UDP = PORTS[1] + 1;
const SHARED_TCP = PORTS[1] + 2;

async function stats(page) {
  return page.evaluate(async () => {
    const pc = window.sportelloPc;
    if (!pc) return null;
    const report = await pc.getStats();
    const out = { video: null, audio: null, pair: null, local: [], remote: {} };
    const byId = {};
    report.forEach((s) => { byId[s.id] = s; });
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.video = { framesDecoded: s.framesDecoded || 0, packets: s.packetsReceived || 0 };
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio = { packets: s.packetsReceived || 0 };
      if (s.type === 'local-candidate') out.local.push(`${s.address}:${s.port}`);
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = byId[s.selectedCandidatePairId];
        const r = p && byId[p.remoteCandidateId];
        if (p && r) out.pair = { state: p.state, remote: `${r.address}:${r.port}`, protocol: r.protocol };
      }
    });
    return out;
  });
}


// A confirmed video appointment whose room is open now (the server's clock is moved to its
// start), with both participants in the call. With `https`, the server then serves the room
// over TLS with its development certificate, as by default.
async function call(media, citizenQuery = '', { https = false } = {}) {
  const citizenBrowser = await launchBrowser();
  const operatorBrowser = await launchBrowser();
  let server = null;
  let dir = null;
  const close = async () => {
    await citizenBrowser.close();
    await operatorBrowser.close();
    if (server) await server.stop({ keep: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const room = await roomOpenNow(citizenBrowser, media);
    ({ server, dir } = room);
    if (https) {
      await server.stop({ keep: true });
      server = await startServer([...media, '--https-listen', `127.0.0.1:${await freePort()}`, '--start-clock-at', room.start.toISOString()], dir);
    }
    const citizen = await (await citizenBrowser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 360, height: 740 } })).newPage();
    const operator = await (await operatorBrowser.newContext({ ignoreHTTPSErrors: true })).newPage();
    citizen.setDefaultTimeout(15000);
    operator.setDefaultTimeout(15000);
    await enter(citizen, `${server.base}${room.paths.citizen}${citizenQuery}`);
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    await enter(operator, `${server.base}${room.paths.operator}`);
    await citizen.getByText('è entrato nella stanza').waitFor();
    return { server, citizen, operator, close };
  } catch (e) {
    // What it started goes with it: a browser left open would keep the tests' process from
    // ending.
    await close();
    throw e;
  }
}

async function bothDecode(citizen, operator, server) {
  for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
    await until(`${who} decoding video`, async () => {
      const s = await stats(page);
      if (process.env.DEBUG_CALL) console.log(who, await page.locator('#room').getAttribute('data-connection').catch(() => '?'), JSON.stringify(s && s.video), JSON.stringify(s && s.audio), server ? (await (await fetch(`${server.admin}/metrics`)).text()).split('\n').filter((l) => l.startsWith('sportello_relay') && !l.startsWith('#')).join(' | ') : '');
      return s && s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packets > 0 && s.pair ? s : null;
    });
  }
}

test('citizen and operator see and hear each other through the relay', async () => {
  const c0 = await call(MEDIA);
  const { server, citizen, operator } = c0;
  try {
    assert.equal(await citizen.locator('#peer-name').textContent(), 'Edilizia privata');

    // Both decode the other's video (and it keeps coming) and receive audio.
    await bothDecode(citizen, operator, server);
    for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
      const first = await until(`${who} decoding video`, async () => {
        const s = await stats(page);
        return s && s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packets > 0 ? s : null;
      });
      await new Promise((r) => setTimeout(r, 1500));
      const later = await stats(page);
      assert.ok(later.video.framesDecoded > first.video.framesDecoded, `${who}: frames keep being decoded`);
      assert.ok(later.audio.packets > first.audio.packets, `${who}: audio keeps arriving`);
      assert.equal(later.pair.state, 'succeeded', `${who}: selected pair`);
      assert.equal(await page.locator('#room').getAttribute('data-connection'), 'connected');
    }
    // Each browser's remote end is the server, never the other browser.
    const c = await stats(citizen);
    const o = await stats(operator);
    assert.ok(!o.local.includes(c.pair.remote), `citizen's remote ${c.pair.remote} is not the operator's address`);
    assert.ok(!c.local.includes(o.pair.remote), `operator's remote ${o.pair.remote} is not the citizen's address`);
    if (RTC_ENGINE) {
      // The rtc engine gives each worker one port of the range, and a room's two sides share one worker.
      assert.equal(c.pair.remote, o.pair.remote, "both sides reach the room's worker");
    } else {
      assert.notEqual(c.pair.remote, o.pair.remote, 'each browser has its own connection to the relay');
    }
    for (const remote of [c.pair.remote, o.pair.remote]) {
      const port = Number(remote.split(':').pop());
      assert.ok(port >= PORTS[0] && port <= PORTS[1], `relay port ${port} is in ${PORTS.join('-')}`);
    }

    // Retransmission uses RTX (RFC 4588) both ways: the relay's answer accepts the browser's RTX
    // and declares its own RTX stream for the video it sends.
    for (const page of [citizen, operator]) {
      const sdp = await page.evaluate(() => window.sportelloPc.remoteDescription.sdp);
      assert.match(sdp, /a=rtpmap:\d+ rtx\/90000/, 'RTX negotiated');
      assert.match(sdp, /a=ssrc-group:FID \d+ \d+/, 'the relay sends video with an RTX stream');
    }

    // The server counted what it forwarded.
    const metrics = await (await fetch(`${server.admin}/metrics`)).text();
    // Totals of the process, with no label that grows with the rooms.
    assert.doesNotMatch(metrics, /room="/);
    const forwarded = [...metrics.matchAll(/^sportello_relay_packets_forwarded_total (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(forwarded.length === 1 && forwarded[0] > 100, `forwarded packets: ${forwarded}`);
    assert.match(metrics, /^sportello_relay_peer_connections 2$/m);
    assert.match(metrics, /^process_cpu_seconds_total [0-9.]+$/m);
    assert.match(metrics, /^process_resident_memory_bytes [0-9]+$/m);
    // Round-trip time to each participant, measured by the relay.
    await until('round-trip times', async () => {
      const m = await (await fetch(`${server.admin}/metrics`)).text();
      const rtts = [...m.matchAll(/^sportello_relay_rtt_seconds_max\{side="(citizen|operator)"\} ([0-9.e-]+)$/gm)];
      return rtts.length === 2 && rtts.every((r) => Number(r[2]) > 0 && Number(r[2]) < 1);
    }, 15000);

    // The chat beside the video, with the keyboard: the citizen spells a surname, the operator
    // sends a form's address, shown to the citizen as a link; a citizen's address stays text.
    const lines = async (page) => page.locator('#chat-log li').allTextContents();
    await citizen.getByLabel('Scrivi un messaggio').fill("Cognome: D'Ambrosio, con la A maiuscola");
    await citizen.getByLabel('Scrivi un messaggio').press('Enter');
    await operator.locator('#chat-log li', { hasText: "D'Ambrosio" }).waitFor();
    await operator.getByLabel('Scrivi un messaggio').fill('Il modulo è qui: https://www.comune.esempio.it/moduli/cila.pdf.');
    await operator.getByRole('button', { name: 'Invia' }).click();
    const link = citizen.locator('#chat-log a');
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), 'https://www.comune.esempio.it/moduli/cila.pdf');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    await citizen.getByLabel('Scrivi un messaggio').fill('Anche qui: https://phishing.example/login');
    await citizen.getByRole('button', { name: 'Invia' }).click();
    const citizenLink = operator.locator('#chat-log li', { hasText: 'phishing.example' });
    await citizenLink.waitFor();
    assert.equal(await citizenLink.locator('a').count(), 0, "a citizen's address is no link");
    // The sender's own line comes back from the server too, maybe after the other side's.
    await citizen.locator('#chat-log li', { hasText: 'phishing.example' }).waitFor();
    const before = await lines(citizen);
    assert.equal(before.length, 3);
    assert.match(before[0], /^Tu \(\d\d:\d\d\): Cognome: D'Ambrosio/);
    assert.match(before[1], /^Edilizia privata \(\d\d:\d\d\): Il modulo è qui/);
    assert.deepEqual(await lines(operator), [before[0].replace(/^Tu/, 'Maria Rossi'), before[1].replace(/^Edilizia privata/, 'Tu'), before[2].replace(/^Tu/, 'Maria Rossi')]);
    assert.equal(await citizen.locator('#chat-log').getAttribute('aria-live'), 'polite');
    assert.match(await citizen.locator('#chat-note').textContent(), /non vengono salvati/);
    // The call page with its messages, on the 360 px phone, meets WCAG 2.1 AA.
    assert.deepEqual(await violations(citizen), []);
    // A message the server refuses (too long, sent past the field's limit) says why; the call goes on.
    await citizen.evaluate(() => window.sportelloRoom.send({ type: 'chat', text: 'x'.repeat(1001) }));
    await citizen.locator('#chat-error', { hasText: 'troppo lungo' }).waitFor();
    assert.equal((await lines(operator)).length, 3);

    // The citizen's page reloads mid-call: the operator is told the connection was lost, the
    // page goes back in by itself, and video flows again both ways.
    const operatorFrames = (await stats(operator)).video.framesDecoded;
    await citizen.reload();
    await until('the operator to hear the connection was lost', async () =>
      (await operator.evaluate(() => window.sportelloStatusLog)).some((t) => t.startsWith('Connessione con Maria Rossi persa')));
    await until('the citizen to be back and decoding', async () => {
      const s = await stats(citizen);
      return s && s.video && s.video.framesDecoded > 10;
    });
    await until('the operator to decode the citizen again', async () =>
      (await stats(operator)).video.framesDecoded > operatorFrames + 30);
    assert.match(await operator.locator('#room-status').textContent(), /Maria Rossi è entrato nella stanza/);
    // It sent its join behind its hello, without waiting a round trip for the server's `ready`.
    const marks = await citizen.evaluate(() => Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime])));
    assert.ok(marks['sportello:join'] < marks['sportello:ready'], JSON.stringify(marks));
    // Nor did it list the devices for a section it never showed.
    assert.equal(await citizen.locator('#camera-select option').count(), 0);
    // The reloaded page has the call's messages again, in order.
    await until("the citizen's messages after the reload", async () => (await lines(citizen)).length === 3);
    assert.deepEqual(await lines(citizen), before);

    // The operator hangs up: the citizen is told, and the server closes the connection.
    await operator.getByRole('button', { name: 'Riaggancia' }).click();
    await citizen.getByText('Edilizia privata è uscita dalla stanza.').waitFor();
    await until('the relay to close the operator connection', async () =>
      /^sportello_relay_peer_connections 1$/m.test(await (await fetch(`${server.admin}/metrics`)).text()));
  } finally {
    await c0.close();
  }
});

test('on one shared UDP port, H.264 from a browser that prefers it (as iOS Safari does) and VP8 from the other both go through', async () => {
  const c = await call(['--media-udp', `127.0.0.1:${SHARED_UDP}`, '--media-tcp', 'off'], '?video=h264');
  try {
    await bothDecode(c.citizen, c.operator);
    // Both connections reach the relay on the one configured port.
    for (const page of [c.citizen, c.operator]) {
      const { pair } = await stats(page);
      assert.equal(pair.protocol, 'udp');
      assert.equal(pair.remote, `127.0.0.1:${SHARED_UDP}`);
    }
    const codecs = async (page, type) => page.evaluate(async (type) => {
      const r = await window.sportelloPc.getStats();
      let mime = null;
      r.forEach((s) => { if (s.type === type && s.kind === 'video' && s.codecId) mime = r.get(s.codecId).mimeType; });
      return mime;
    }, type);
    assert.equal(await codecs(c.citizen, 'outbound-rtp'), 'video/H264', 'the citizen sends H.264');
    assert.equal(await codecs(c.operator, 'inbound-rtp'), 'video/H264', 'the operator receives H.264');
    assert.equal(await codecs(c.operator, 'outbound-rtp'), 'video/VP8', 'the operator sends VP8');
    assert.equal(await codecs(c.citizen, 'inbound-rtp'), 'video/VP8', 'which the citizen receives');
    const first = (await stats(c.operator)).video.framesDecoded;
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok((await stats(c.operator)).video.framesDecoded > first, 'and keeps decoding it');
  } finally {
    await c.close();
  }
});

test('over HTTPS each browser loads the room and opens its socket on one HTTP/2 connection', async () => {
  const c = await call(MEDIA, '', { https: true });
  try {
    await bothDecode(c.citizen, c.operator);
    for (const page of [c.citizen, c.operator]) {
      assert.ok(page.url().startsWith('https://'), page.url());
      // The page and its script came over HTTP/2.
      const protocols = await page.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter((e) => e.name.startsWith(location.origin)).map((e) => [e.name, e.nextHopProtocol]));
      assert.ok(protocols.length >= 3, JSON.stringify(protocols));
      for (const [name, protocol] of protocols) assert.equal(protocol, 'h2', name);
    }
    // Both room sockets opened as WebSockets over HTTP/2 (RFC 8441: a CONNECT stream on the
    // page's connection), none by an HTTP/1.1 upgrade.
    const metrics = await (await fetch(`${c.server.admin}/metrics`)).text();
    assert.match(metrics, /^sportello_http_requests_total\{route="room_socket",method="CONNECT",status="2xx"\} 2$/m);
    assert.doesNotMatch(metrics, /route="room_socket",method="GET"/);
  } finally {
    await c.close();
  }
});

test('with UDP blocked the call goes over ICE-TCP, both connections on one TCP port', async () => {
  const c = await call(['--media-udp', 'off', '--media-tcp', `127.0.0.1:${SHARED_TCP}`]);
  try {
    await bothDecode(c.citizen, c.operator);
    for (const page of [c.citizen, c.operator]) {
      const { pair } = await stats(page);
      assert.equal(pair.protocol, 'tcp');
      assert.equal(pair.remote, `127.0.0.1:${SHARED_TCP}`);
    }
  } finally {
    await c.close();
  }
});

// coturn on loopback `port`, with the user the tests' `--ice-servers` name (see turnServers).
function startTurn(port) {
  return spawn('turnserver', ['-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    '--min-port=49160', '--max-port=49260', '--lt-cred-mech', '--user=sportello:segreto', '--realm=sportello.test',
    '--no-tls', '--no-dtls', '--no-cli', '--allow-loopback-peers', '--log-file=stdout', '--simple-log'], { stdio: 'ignore' });
}

function turnServers(port) {
  return JSON.stringify([{ urls: [`turn:127.0.0.1:${port}?transport=udp`], username: 'sportello', credential: 'segreto' }]);
}

test('a citizen forced through TURN (relay only) still gets the call', async () => {
  const port = 34000 + Math.floor(Math.random() * 1000);
  const turn = startTurn(port);
  let c = null;
  try {
    c = await call([...MEDIA, '--ice-servers', turnServers(port)], '?ice=relay');
    await bothDecode(c.citizen, c.operator);
    const local = await c.citizen.evaluate(async () => {
      const r = await window.sportelloPc.getStats();
      let type = null;
      r.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = r.get(s.selectedCandidatePairId); type = r.get(p.localCandidateId).candidateType; } });
      return type;
    });
    assert.equal(local, 'relay', 'the citizen reaches the server only through TURN');
  } finally {
    if (c) await c.close();
    turn.kill();
  }
});

test('a citizen whose media cannot reach the relay is told so, and the page tries again until the call goes through', async (t) => {
  // The citizen may reach the relay only through a TURN server that is not running at first:
  // no candidate, so the first connection never connects, and the relay gives up on it at its
  // deadline (15 s after its answer). The browser alone goes on waiting: with a page that did not
  // listen to the relay, this test timed out with no second offer 25 s after the first.
  const port = await freePort();
  let c = null;
  let turn = null;
  try {
    c = await call([...MEDIA, '--ice-servers', turnServers(port)], '?ice=relay');
    const offers = () => c.citizen.evaluate(() => performance.getEntriesByName('sportello:offer').map((e) => e.startTime));
    await until('the first offer', async () => (await offers()).length >= 1 || null);
    const [first] = await offers();
    await until('a second offer after the relay gave up', async () => (await offers()).length >= 2 || null, 25000);
    const [, second] = await offers();
    // From now on the network lets the call through: the second try, still asking the TURN
    // server for an address (its requests are sent again for about 40 s), can connect.
    turn = startTurn(port);
    const after = (second - first) / 1000;
    // At the relay's deadline (found within 2 s), not when the browser would give up.
    assert.ok(after >= 14 && after < 20, `the page offered again ${after.toFixed(1)} s after its first offer`);
    t.diagnostic(`the page offered again ${after.toFixed(1)} s after its first offer`);
    assert.equal(await c.citizen.evaluate(() => performance.getEntriesByName('sportello:relay-failed').length), 1, 'the relay said the connection failed, once');
    // The citizen was told what is happening and what to try, where the call's status is.
    const said = await c.citizen.evaluate(() => window.sportelloStatusLog);
    assert.ok(said.some((t) => /^La videochiamata non riesce a collegarsi: la rete che stai usando potrebbe bloccarla\. Nuovo tentativo in corso/.test(t)), JSON.stringify(said));
    // The operator was told too, in the call's status.
    const operatorSaid = await c.operator.evaluate(() => window.sportelloStatusLog);
    assert.ok(operatorSaid.some((t) => / non riesce a collegarsi alla videochiamata \(la sua rete potrebbe bloccarla\): sta riprovando\.$/.test(t)), JSON.stringify(operatorSaid));
    // The second try goes through; on both pages the status says again what it said before.
    await bothDecode(c.citizen, c.operator);
    for (const page of [c.citizen, c.operator]) {
      await until('the status back', async () => !/non riesce a collegarsi/.test(await page.locator('#room-status').innerText()) || null);
      assert.match(await page.locator('#room-status').innerText(), /è entrato nella stanza/);
    }
    const metrics = await (await fetch(`${c.server.admin}/metrics`)).text();
    assert.match(metrics, /\nsportello_relay_connections_failed_total\{reason="never_connected"\} 1\n/);
  } finally {
    if (c) await c.close();
    if (turn) turn.kill();
  }
});

// Real packet loss on loopback (this kernel has no netem): iptables drops a share of the
// datagrams to and from the relay's shared port, at random.
function iptables(args) {
  const r = spawnSync('iptables', args, { encoding: 'utf8' });
  return r.status === 0 ? null : (r.error ? r.error.message : r.stderr.trim());
}

test('with 3 % of packets lost each way, NACKs are answered with retransmissions and video keeps flowing', async (t) => {
  const port = SHARED_UDP + 3;
  const rules = [['--dport', String(port)], ['--sport', String(port)]].map(([dir, p]) =>
    ['INPUT', '-i', 'lo', '-p', 'udp', dir, p, '-m', 'statistic', '--mode', 'random', '--probability', '0.03', '-j', 'DROP']);
  const refused = iptables(['-A', ...rules[0]]);
  if (refused) {
    t.skip(`iptables cannot drop packets here: ${refused}`);
    return;
  }
  iptables(['-A', ...rules[1]]);
  let c = null;
  try {
    c = await call(['--media-udp', `127.0.0.1:${port}`, '--media-tcp', 'off']);
    await bothDecode(c.citizen, c.operator);
    const video = (page) => page.evaluate(async () => {
      const out = {};
      (await window.sportelloPc.getStats()).forEach((s) => {
        if (s.kind !== 'video') return;
        if (s.type === 'outbound-rtp') out.out = { nacks: s.nackCount || 0, resent: s.retransmittedPacketsSent || 0 };
        if (s.type === 'inbound-rtp') out.in = { nacks: s.nackCount || 0, frames: s.framesDecoded || 0, lost: s.packetsLost || 0, resent: s.retransmittedPacketsReceived };
      });
      return out;
    });
    // Ten seconds of call with loss both ways.
    const before = await video(c.citizen);
    await new Promise((r) => setTimeout(r, 10000));
    const after = await video(c.citizen);
    if (process.env.DEBUG_CALL) console.log(JSON.stringify({ before, after }));
    // Uplink: the relay saw the citizen's packets missing, asked for them, and got them again.
    assert.ok(after.out.nacks > 0, `the relay sent NACKs to the citizen (${after.out.nacks})`);
    assert.ok(after.out.resent > 0, `the citizen retransmitted (${after.out.resent} packets)`);
    // Downlink: the citizen asked the relay for what it missed, and the relay resent it.
    assert.ok(after.in.nacks > 0, `the citizen sent NACKs (${after.in.nacks})`);
    if (after.in.resent !== undefined) assert.ok(after.in.resent > 0, `the relay retransmitted (${after.in.resent} packets)`);
    assert.ok(after.in.frames > before.in.frames + 100, `video kept being decoded (${before.in.frames} -> ${after.in.frames} frames)`);
    const metrics = await (await fetch(`${c.server.admin}/metrics`)).text();
    const nacks = [...metrics.matchAll(/^sportello_relay_nacks_total (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(nacks.length === 1 && nacks[0] > 0, `the relay counted the browsers' NACKs: ${nacks}`);
    // The uplinks' losses, as the relay's receiver reports tell them to the browsers.
    const lost = [...metrics.matchAll(/^sportello_relay_packets_lost_total (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(lost.length === 1 && lost[0] > 0, `the relay counted the packets lost on the way to it: ${lost}`);
    // The downlinks' losses, as the browsers' receiver reports tell them to the relay.
    const downlink = [...metrics.matchAll(/^sportello_relay_downlink_packets_lost_total (\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(downlink.length === 1 && downlink[0] > 0, `the relay counted the packets lost on the way from it: ${downlink}`);
    t.diagnostic(`packets lost on the way to the relay ${lost[0]}, from it ${downlink[0]} (10 s and more of call)`);
  } finally {
    for (const rule of rules) iptables(['-D', ...rule]);
    if (c) await c.close();
  }
});

test('a name the room refuses is said next to the field, nobody enters, and the corrected name starts the call', async () => {
  const citizenBrowser = await launchBrowser();
  const operatorBrowser = await launchBrowser();
  const { server, dir, paths } = await roomOpenNow(citizenBrowser, MEDIA);
  try {
    const citizen = await (await citizenBrowser.newContext()).newPage();
    const operator = await (await operatorBrowser.newContext()).newPage();
    citizen.setDefaultTimeout(15000);
    // A camera that takes a second to open (as a phone's does, or one asking for permission).
    await citizen.addInitScript(() => {
      const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (c) => new Promise((r) => setTimeout(r, 1000)).then(() => open(c));
    });
    await citizen.goto(`${server.base}${paths.citizen}`);
    // The button stays where it is when the camera and microphone lists above it fill in, once
    // the camera is open: a target that moves is tapped wrong (once, this suite's click landed
    // on the lists).
    const enterButton = citizen.getByRole('button', { name: 'Entra nella stanza' });
    await enterButton.waitFor();
    const at = await enterButton.boundingBox();
    // Beside the preview, the camera and the microphone to choose from.
    await citizen.getByRole('combobox', { name: 'Fotocamera' }).getByRole('option', { name: 'fake_device_0' }).waitFor({ state: 'attached' });
    assert.deepEqual(await enterButton.boundingBox(), at, 'the button stayed where it was');
    await enterButton.click();
    const name = citizen.getByRole('textbox', { name: 'Il tuo nome e cognome' });
    // A right-to-left override makes a name show as something it is not: refused.
    await name.fill('Maria\u202eissoR');
    await citizen.getByRole('button', { name: 'Collegati' }).click();
    await citizen.locator('#name-error').getByText('nome non valido').waitFor();
    assert.equal(await name.getAttribute('aria-invalid'), 'true');
    assert.equal(await citizen.locator('#state-in').isHidden(), true, 'not in the room');
    assert.ok(await citizen.getByRole('combobox', { name: 'Microfono' }).getByRole('option').count() >= 1, 'microphones listed');
    // The call the page started behind the join is dropped, and the name is not remembered.
    await until('the refused call closed', () => citizen.evaluate(() => !window.sportelloPc || window.sportelloPc.connectionState === 'closed'));
    assert.equal(await citizen.evaluate(() => Object.keys(sessionStorage).length), 0);

    // The operator finds nobody waiting; the corrected name enters and the call connects.
    await enter(operator, `${server.base}${paths.operator}`);
    await name.fill('Maria Rossi');
    await citizen.getByRole('button', { name: 'Collegati' }).click();
    assert.equal(await citizen.locator('#name-error').isHidden(), true);
    await operator.getByText('è entrato nella stanza').waitFor();
    assert.equal(await operator.locator('#peer-name').textContent(), 'Maria Rossi');
    await bothDecode(citizen, operator, server);
  } finally {
    await citizenBrowser.close();
    await operatorBrowser.close();
    await server.stop({ keep: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
