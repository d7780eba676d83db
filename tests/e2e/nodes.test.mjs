// Two Sportello nodes on one PostgreSQL (issue 16): the citizen's page is served by one node
// and the operator's by the other, so their room sockets reach different nodes; the node that
// does not hold the room forwards its socket to the one that does, and the two headless
// Chromium clients complete a call through the holder's relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, binary, freePort } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { enter, bothDecode } from './call-helpers.mjs';

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

async function node(id, db, clock, dir = null) {
  const port = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--database-url', db, '--secret-key', SECRET,
    '--node-id', id, '--node-url', `http://127.0.0.1:${port}`, ...MEDIA];
  if (clock) args.push('--start-clock-at', clock);
  return startServer(args, dir);
}

async function health(server) {
  return (await fetch(`${server.admin}/healthz`)).text();
}

test('two nodes: the sockets reach different nodes and the call goes through the room\'s node', async (t) => {
  const db = freshDatabase();
  if (!db) {
    assert.ok(!process.env.CI, 'SPORTELLO_TEST_POSTGRES is set in CI (scripts/test)');
    t.skip('SPORTELLO_TEST_POSTGRES is not set: scripts/test starts PostgreSQL');
    return;
  }
  const citizenBrowser = await launchBrowser();
  const operatorBrowser = await launchBrowser();
  const servers = [];
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
    // Both nodes with the room open.
    a = await node('a', db, start.toISOString(), dirA);
    servers.push(a);
    const b = await node('b', db, start.toISOString());
    servers.push(b);

    const citizen = await (await citizenBrowser.newContext({ viewport: { width: 360, height: 740 } })).newPage();
    const operator = await (await operatorBrowser.newContext()).newPage();
    citizen.setDefaultTimeout(15000);
    operator.setDefaultTimeout(15000);
    await enter(citizen, `${a.base}${paths.citizen}`);
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    await enter(operator, `${b.base}${paths.operator}`);
    await citizen.getByText('è entrato nella stanza').waitFor();
    await bothDecode(citizen, operator);

    // The citizen's node holds the room; the operator's forwarded its socket there.
    const [ha, hb] = [await health(a), await health(b)];
    assert.match(ha, /node: a\n[\s\S]*rooms served here: 1\n[\s\S]*sockets forwarded to other nodes: 0/, ha);
    assert.match(hb, /node: b\n[\s\S]*rooms served here: 0\n[\s\S]*sockets forwarded to other nodes: 1/, hb);
    const relayed = async (s) => /^sportello_relay_peer_connections (\d+)$/m.exec(await (await fetch(`${s.admin}/metrics`)).text())?.[1];
    assert.equal(await relayed(a), '2', 'both media connections on the holder');
    assert.equal(await relayed(b), '0', 'none on the forwarding node');

    // The operator hangs up: the citizen hears it through the forwarded socket.
    await operator.getByRole('button', { name: 'Riaggancia' }).click();
    await citizen.getByText('Edilizia privata è uscita dalla stanza.').waitFor();
  } finally {
    await citizenBrowser.close();
    await operatorBrowser.close();
    for (const s of servers) await s.stop();
  }
});
