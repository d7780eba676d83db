// The server is stopped with SIGTERM (an upgrade, `systemctl restart`) in the middle of a call
// while citizens keep loading pages: every page request gets its answer or finds the port
// closed (none is cut off), the rooms' sockets are told to reconnect, and once the server is
// back on the same address both pages go back into the call by themselves, with video again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import { startServer, launchBrowser } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { enter, roomPaths, stats, until } from './call-helpers.mjs';

const PORTS = [42000 + Math.floor(Math.random() * 400) * 20];
PORTS.push(PORTS[0] + 19);
const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off', '--media-ports', `${PORTS[0]}-${PORTS[1]}`];

// Page loads back to back until `stop()`, each on a new connection (as a new visitor's: a
// request on a kept-alive connection that the server closes as it stops is retried by browsers,
// so it says nothing about the server): how each ended.
function getOnce(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function loadPages(base) {
  const outcomes = { answered: 0, refused: 0, other: [] };
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        const status = await getOnce(`${base}/servizi/11`);
        if (status === 200) outcomes.answered += 1;
        else outcomes.other.push(`status ${status}`);
      } catch (e) {
        if (e.code === 'ECONNREFUSED') outcomes.refused += 1;
        else outcomes.other.push(String(e.code || e.message));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { outcomes, async stop() { running = false; await done; } };
}

test('after SIGTERM mid-call, pages are answered or refused, and both sides rejoin the restarted server by themselves', async () => {
  let server = await startServer(MEDIA);
  const dir = server.dir;
  const listen = new URL(server.base).host;
  const citizenBrowser = await launchBrowser();
  const operatorBrowser = await launchBrowser();
  try {
    const { code, start } = await bookVideo(await (await citizenBrowser.newContext()).newPage(), server);
    await server.stop({ keep: true });
    const paths = roomPaths(dir, code);
    const args = [...MEDIA, '--listen', listen, '--start-clock-at', start.toISOString()];
    server = await startServer(args, dir);
    const citizen = await (await citizenBrowser.newContext({ viewport: { width: 360, height: 740 } })).newPage();
    const operator = await (await operatorBrowser.newContext()).newPage();
    citizen.setDefaultTimeout(20000);
    operator.setDefaultTimeout(20000);
    await enter(citizen, `${server.base}${paths.citizen}`);
    await enter(operator, `${server.base}${paths.operator}`);
    for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
      await until(`${who} decoding video`, async () => {
        const s = await stats(page);
        return s && s.video && s.video.framesDecoded > 0;
      });
      await page.evaluate(() => { window.firstPc = window.sportelloPc; });
    }

    const load = loadPages(server.base);
    await new Promise((r) => setTimeout(r, 300));
    const stopping = Date.now();
    await server.stop({ keep: true });
    const stopMs = Date.now() - stopping;
    // Both pages say they are reconnecting, in their language.
    await citizen.getByText('Connessione persa, nuovo tentativo in corso…').first().waitFor();
    await new Promise((r) => setTimeout(r, 300));
    await load.stop();
    assert.deepEqual(load.outcomes.other, [], `every page load answered or refused: ${JSON.stringify(load.outcomes)}`);
    assert.ok(load.outcomes.answered > 0, JSON.stringify(load.outcomes));
    assert.ok(load.outcomes.refused > 0, JSON.stringify(load.outcomes));
    assert.ok(stopMs < 15000, `stopped in ${stopMs} ms`);

    const restarting = Date.now();
    server = await startServer(args, dir);
    for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
      await until(`${who} back in the call with video`, async () => {
        const again = await page.evaluate(() => window.sportelloPc && window.sportelloPc !== window.firstPc);
        if (!again) return false;
        const s = await stats(page);
        return s && s.video && s.video.framesDecoded > 0;
      }, 30000);
    }
    console.log(`stopped in ${stopMs} ms; both back with video ${Date.now() - restarting} ms after the restart began`);
  } finally {
    await citizenBrowser.close();
    await operatorBrowser.close();
    await server.stop({ keep: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
