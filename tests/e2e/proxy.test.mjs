// Behind a real reverse proxy: Debian's nginx, configured with deploy/nginx/sportello.conf itself
// (only its addresses, ports and certificate paths replaced), terminates TLS on loopback in
// front of Sportello running with TLS off and trusted_proxies = 127.0.0.1. Through it a citizen
// books and confirms a video appointment, then citizen and operator complete a call whose room
// socket goes through nginx; cookies are Secure, the email's links are on the public address,
// and the mailbox and the metrics are not served to the outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, binary, freePort } from './helpers.mjs';
import { startNginx } from './nginx-helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { until, enter, roomPaths, stats, bothDecode } from './call-helpers.mjs';

// The certificate nginx uses here is made by the test: Node's fetch and Chromium accept it.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

// Ports of their own: call.test.mjs uses 40000-49999, turn.test.mjs 54000-57999.
const PORTS = [50000 + Math.floor(Math.random() * 200) * 20];
PORTS.push(PORTS[0] + 19);
const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off', '--media-ports', `${PORTS[0]}-${PORTS[1]}`];

test('through a real nginx: booking, email links, Secure cookies, hidden pages and a complete video call', async () => {
  // Three different free ports (a port just freed may be handed out again).
  const free = new Set();
  while (free.size < 3) free.add(await freePort());
  const [https, http, app] = [...free];
  const ports = { https, http, app };
  const nginx = await startNginx(ports);
  const site = `https://127.0.0.1:${ports.https}`;
  const behind = [...MEDIA, '--listen', `127.0.0.1:${ports.app}`, '--public-url', site, '--trusted-proxies', '127.0.0.1'];
  let server = null;
  const browsers = [];
  try {
    server = await startServer(behind);
    const dir = server.dir;
    const citizenBrowser = await launchBrowser();
    const operatorBrowser = await launchBrowser();
    browsers.push(citizenBrowser, operatorBrowser);
    const booking = await citizenBrowser.newContext({ ignoreHTTPSErrors: true });

    // The citizen books through nginx; the mailbox is read on Sportello's administration
    // listener (neither nginx nor the public listener serves it), and the confirmation link in
    // the email is on the public address.
    const { code, start } = await bookVideo(await booking.newPage(), server, undefined, { base: site });
    // The form's CSRF cookie came through nginx over HTTPS: Secure, with the __Host- prefix.
    const csrf = (await booking.cookies(site)).find((c) => c.name === '__Host-csrf');
    assert.ok(csrf && csrf.secure && csrf.httpOnly && csrf.sameSite === 'Strict', `csrf cookie: ${JSON.stringify(await booking.cookies(site))}`);
    // Sportello decides from X-Forwarded-Proto: the same page asked directly over plain HTTP
    // gets a cookie without Secure, through nginx with it.
    const direct = (await fetch(`${server.base}/ufficio/accesso`)).headers.get('set-cookie');
    assert.match(direct, /^csrf=/);
    assert.doesNotMatch(direct, /Secure/i);
    const proxied = (await fetch(`${site}/ufficio/accesso`)).headers.get('set-cookie');
    assert.match(proxied, /^__Host-csrf=[^;]+;.*Secure/i);

    // The mailbox and the metrics are for this machine only: nginx does not pass them on.
    for (const path of ['/posta', '/posta/1', '/posta/1/invito.ics', '/metrics']) {
      const r = await fetch(`${site}${path}`, { redirect: 'manual' });
      assert.ok([403, 404].includes(r.status), `${path} through nginx answers ${r.status}`);
    }
    // Should a proxy pass them on, Sportello's public listener does not serve them at all,
    // whoever the client is; only its administration listener does.
    for (const path of ['/posta', '/metrics']) {
      for (const xff of ['203.0.113.7', '127.0.0.1']) {
        const r = await fetch(`${server.base}${path}`, { headers: { 'x-forwarded-for': xff } });
        assert.equal(r.status, 404, `${path} on the public listener, client ${xff}`);
      }
      assert.equal((await fetch(`${server.admin}${path}`)).status, 200, `${path} on the administration listener`);
    }
    // Plain HTTP goes to HTTPS; a body far over the forms' size stops at nginx.
    const plain = await fetch(`http://127.0.0.1:${ports.http}/ufficio?x=1`, { redirect: 'manual' });
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.get('location'), 'https://127.0.0.1/ufficio?x=1');
    const big = await fetch(`${site}/ufficio/accesso`, { method: 'POST', body: 'x'.repeat(100 * 1024), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(big.status, 413);

    // The room opens at the start: the server comes back with its clock there, on the same
    // address behind the same nginx.
    await server.stop({ keep: true });
    const paths = roomPaths(dir, code);
    const admin = execFileSync(binary(), ['--data-dir', dir, 'admin', 'create', '--email', 'admin@comune.example.it'], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
    const password = admin.match(/password:\s+(\S+)/)[1];
    server = await startServer([...behind, '--start-clock-at', start.toISOString()], dir);

    // A staff login through nginx: the session cookie is Secure too.
    const office = await operatorBrowser.newContext({ ignoreHTTPSErrors: true });
    const login = await office.newPage();
    await login.goto(`${site}/ufficio/accesso`);
    await login.getByLabel('Email').fill('admin@comune.example.it');
    await login.getByLabel('Password').fill(password);
    await login.getByRole('button', { name: 'Accedi' }).click();
    await login.waitForURL(/\/ufficio\/password/);
    const session = (await office.cookies(site)).find((c) => c.name === '__Host-sessione');
    assert.ok(session && session.secure && session.httpOnly && session.sameSite === 'Strict', `session cookie: ${JSON.stringify(await office.cookies(site))}`);

    // The call: both pages and their room sockets go through nginx, the media straight to the
    // relay.
    const citizen = await (await citizenBrowser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 360, height: 740 } })).newPage();
    const operator = await office.newPage();
    citizen.setDefaultTimeout(15000);
    operator.setDefaultTimeout(15000);
    await enter(citizen, `${site}${paths.citizen}`);
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    await enter(operator, `${site}${paths.operator}`);
    await citizen.getByText('è entrato nella stanza').waitFor();
    await bothDecode(citizen, operator);
    for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
      const first = await stats(page);
      await new Promise((r) => setTimeout(r, 1000));
      const later = await stats(page);
      assert.ok(later.video.framesDecoded > first.video.framesDecoded, `${who}: frames keep being decoded`);
      const port = Number(later.pair.remote.split(':').pop());
      assert.ok(port >= PORTS[0] && port <= PORTS[1], `${who}: media goes to the relay's port ${port}, not through nginx`);
      assert.equal(await page.evaluate(() => location.origin), site);
    }

    // The operator hangs up: the citizen hears it over its socket through nginx.
    await operator.getByRole('button', { name: 'Riaggancia' }).click();
    await citizen.getByText('Edilizia privata è uscita dalla stanza.').waitFor();

    // Pages and assets came through nginx over HTTP/2.
    for (const [who, page] of [['citizen', citizen], ['operator', operator]]) {
      const protocols = await page.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter((e) => e.name.startsWith(location.origin)).map((e) => [e.name, e.nextHopProtocol]));
      assert.ok(protocols.length >= 3, `${who}: ${JSON.stringify(protocols)}`);
      for (const [name, protocol] of protocols) assert.equal(protocol, 'h2', `${who}: ${name}`);
    }

    // nginx served the room pages over HTTP/2 and upgraded their sockets on HTTP/1.1 (101,
    // logged when they close).
    await citizen.close();
    await operator.close();
    await until('nginx to log both room sockets', async () =>
      (nginx.log().match(/"GET \/ws\/stanza\/\S+ HTTP\/1\.1" 101 /g) || []).length >= 2, 5000);
    assert.match(nginx.log(), /"GET \/stanza\/\S+ HTTP\/2\.0" 200 /);
  } finally {
    for (const b of browsers) await b.close();
    if (server) {
      await server.stop({ keep: true });
      rmSync(server.dir, { recursive: true, force: true });
    }
    await nginx.stop();
  }
});
