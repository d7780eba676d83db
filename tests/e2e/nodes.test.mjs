// Two Sportello nodes on one PostgreSQL (issue 16) behind Debian's nginx, configured with
// deploy/nginx/sportello.conf and both nodes in its upstream (least connections): the two headless
// Chromium clients open every page and socket through nginx, their room sockets land on
// different nodes, the node that does not hold the room forwards its socket to the one that
// does, and the call goes through the holder's relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, binary, freePort } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { enter, bothDecode } from './call-helpers.mjs';
import { startNginx } from './nginx-helpers.mjs';

// The certificate nginx uses here is made by the test: Node's fetch and Chromium accept it.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off'];
const SECRET = 'e2e-nodes-secret-e2e-nodes-secret-0123456789';

// A new database on the test PostgreSQL (scripts/test starts it and sets the variable).
function freshDatabase() {
  const base = process.env.SPORTELLO_TEST_POSTGRES;
  if (!base) return null;
  const name = `e2e_nodes_${Date.now()}_${process.pid}`;
  execFileSync('psql', [`${base}/postgres`, '-qc', `CREATE DATABASE ${name}`]);
  return `${base}/${name}`;
}

async function node(id, db, clock, dir = null, site = null) {
  const port = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--database-url', db, '--secret-key', SECRET,
    '--node-id', id, '--node-url', `http://127.0.0.1:${port}`, ...MEDIA];
  if (clock) args.push('--start-clock-at', clock);
  if (site) args.push('--public-url', site, '--trusted-proxies', '127.0.0.1');
  const server = await startServer(args, dir);
  return { ...server, port };
}

// A count of a node's /healthz.
async function count(server, what) {
  const h = await health(server);
  const n = new RegExp(`^${what}: (\\d+)$`, 'm').exec(h);
  assert.ok(n, h);
  return Number(n[1]);
}

async function health(server) {
  return (await fetch(`${server.admin}/healthz`)).text();
}

test('two nodes behind nginx: the sockets land on different nodes and the call goes through the room\'s node', async (t) => {
  const db = freshDatabase();
  if (!db) {
    assert.ok(!process.env.CI, 'SPORTELLO_TEST_POSTGRES is set in CI (scripts/test)');
    t.skip('SPORTELLO_TEST_POSTGRES is not set: scripts/test starts PostgreSQL');
    return;
  }
  const citizenBrowser = await launchBrowser();
  const operatorBrowser = await launchBrowser();
  const servers = [];
  let nginx = null;
  try {
    // The appointment, booked through the first node (which seeds the demo comune).
    let a = await node('a', db, null);
    const { code, start } = await bookVideo(await (await citizenBrowser.newContext()).newPage(), a);
    const dirA = a.dir;
    await a.stop({ keep: true });
    const out = execFileSync(binary(), ['--data-dir', dirA, '--database-url', db, '--secret-key', SECRET, 'room-link', code],
      { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
    const paths = {
      citizen: new URL(out.match(/citizen:\s+(\S+)/)[1]).pathname,
      operator: new URL(out.match(/operator:\s+(\S+)/)[1]).pathname,
    };
    // Both nodes with the room open, behind one nginx that sends each request to the next node.
    const free = new Set();
    while (free.size < 2) free.add(await freePort());
    const [https, http] = [...free];
    const site = `https://127.0.0.1:${https}`;
    a = await node('a', db, start.toISOString(), dirA, site);
    servers.push(a);
    const b = await node('b', db, start.toISOString(), null, site);
    servers.push(b);
    nginx = await startNginx({ https, http, app: [a.port, b.port] });

    const citizen = await (await citizenBrowser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 360, height: 740 } })).newPage();
    const office = await operatorBrowser.newContext({ ignoreHTTPSErrors: true });
    citizen.setDefaultTimeout(15000);
    await enter(citizen, `${site}${paths.citizen}`);
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    // The citizen's socket placed the room on the node it reached.
    const holder = (await count(a, 'rooms served here')) === 1 ? a : b;
    const other = holder === a ? b : a;
    assert.equal(await count(other, 'rooms served here'), 0);
    // The operator's page, through nginx: its socket goes to the node with fewer open
    // connections, the other node (the citizen's socket is open on the holder). Should a
    // request still in flight tie them, the page is opened again, a few requests later.
    let operator = null;
    for (let tries = 0; ; tries++) {
      assert.ok(tries < 8, 'the operator\'s socket never landed on the other node');
      operator = await office.newPage();
      operator.setDefaultTimeout(15000);
      await enter(operator, `${site}${paths.operator}`);
      await citizen.getByText('è entrato nella stanza').waitFor();
      if (await count(other, 'forwarded sockets open now') === 1) {
        t.diagnostic(`the operator's page opened ${tries + 1} time(s) before its socket reached the other node`);
        break;
      }
      await operator.close();
      await citizen.getByText(/è uscita dalla stanza|persa, riconnessione/).waitFor();
      for (let extra = 0; extra <= tries; extra++) await fetch(`${site}/`);
    }
    await bothDecode(citizen, operator);

    // The holder relays both media connections; the other node only forwarded a socket.
    assert.equal(await count(holder, 'forwarded sockets open now'), 0);
    const relayed = async (s) => /^sportello_relay_peer_connections (\d+)$/m.exec(await (await fetch(`${s.admin}/metrics`)).text())?.[1];
    assert.equal(await relayed(holder), '2', 'both media connections on the holder');
    assert.equal(await relayed(other), '0', 'none on the forwarding node');
    for (const page of [citizen, operator]) {
      assert.equal(await page.evaluate(() => location.origin), site);
    }

    // The operator hangs up: the citizen hears it through the forwarded socket.
    await operator.getByRole('button', { name: 'Riaggancia' }).click();
    await citizen.getByText('Edilizia privata è uscita dalla stanza.').waitFor();
  } finally {
    await citizenBrowser.close();
    await operatorBrowser.close();
    if (nginx) await nginx.stop();
    for (const s of servers) await s.stop();
  }
});
