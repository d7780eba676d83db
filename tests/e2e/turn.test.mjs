// coturn with time-limited credentials: coturn runs with deploy/coturn/turnserver.conf itself
// (use-auth-secret, static-auth-secret; only addresses, ports, realm and secret replaced for
// loopback, TLS lines left out), Sportello with the same secret. A citizen forced through TURN
// (relay only) gets the call with the credentials Sportello made for its socket; coturn
// refuses the same user with an expired or altered credential.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';
import { until, enter, roomPaths, stats, bothDecode } from './call-helpers.mjs';

const DOC = new URL('../../deploy/coturn/turnserver.conf', import.meta.url);
// Ports of their own: call.test.mjs uses 40000-49999 (and 49160-49260 for its coturn), proxy.test.mjs
// 50000-53999.
const BASE = 54000 + Math.floor(Math.random() * 100) * 40;
const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off', '--media-ports', `${BASE}-${BASE + 19}`];
let TURN_PORT = BASE + 20;
let RELAY_PORTS = [BASE + 21, BASE + 39];

// The documented settings, less those this machine must replace (each must be in the file, so
// that a changed document fails here), plus loopback's.
function coturnConfig(dir, secret) {
  const replaced = ['listening-port', 'tls-listening-port', 'cert', 'pkey', 'realm', 'static-auth-secret', 'min-port', 'max-port', 'syslog'];
  const lines = readFileSync(DOC, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const key of replaced) assert.ok(lines.some((l) => l.split('=')[0] === key), `deploy/coturn/turnserver.conf sets ${key}`);
  for (const needed of ['use-auth-secret', 'no-multicast-peers', 'denied-peer-ip=127.0.0.0-127.255.255.255']) {
    assert.ok(lines.includes(needed), `deploy/coturn/turnserver.conf has ${needed}`);
  }
  const kept = lines.filter((l) => !replaced.includes(l.split('=')[0]));
  return [...kept,
    'listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', `listening-port=${TURN_PORT}`,
    `min-port=${RELAY_PORTS[0]}`, `max-port=${RELAY_PORTS[1]}`,
    'realm=sportello.test', `static-auth-secret=${secret}`,
    'no-tls', 'no-dtls',
    // Everything runs on loopback here: the relay's address is the one peer allowed among the
    // denied ranges (as the file says to do for a relay with a private address).
    'allow-loopback-peers', 'allowed-peer-ip=127.0.0.1',
    // Sessions and their users in the log, for the assertions below.
    'verbose',
    `pidfile=${dir}/turnserver.pid`, `log-file=${dir}/turn.log`, ''].join('\n');
}

function startCoturn(secret) {
  const dir = mkdtempSync(join(tmpdir(), 'sportello-turn-'));
  writeFileSync(join(dir, 'turnserver.conf'), coturnConfig(dir, secret));
  const child = spawn('turnserver', ['-c', join(dir, 'turnserver.conf')], { stdio: 'ignore' });
  let failed = null;
  child.on('error', (e) => { failed = e; });
  return {
    check() {
      if (failed) throw new Error(`turnserver did not start (${failed.message}): scripts/test installs Debian's coturn`);
      if (child.exitCode !== null) throw new Error(`turnserver exited with ${child.exitCode}`);
    },
    log: () => { try { return readFileSync(join(dir, 'turn.log'), 'utf8'); } catch { return ''; } },
    async stop() {
      if (child.exitCode === null && !failed) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// An allocation with these credentials, and data relayed through it (coturn's own client).
function allocate(username, credential) {
  const r = spawnSync('turnutils_uclient', ['-y', '-n', '2', '-m', '1', '-u', username, '-w', credential, '-p', String(TURN_PORT), '127.0.0.1'],
    { encoding: 'utf8', timeout: 15000 });
  if (r.error) throw new Error(`turnutils_uclient: ${r.error.message}`);
  return r.status === 0;
}

const hmac = (secret, username) => createHmac('sha1', secret).update(username).digest('base64');

test('with coturn checking time-limited credentials, a citizen forced through TURN gets the call; expired ones are refused', async () => {
  const secret = randomBytes(24).toString('base64');
  let turn = null;
  let server = null;
  const browsers = [];
  try {
    // coturn on this test's ports; if it does not answer (a port of the block taken by
    // another program here), again on a block of ports of its own (58000-59999).
    for (let attempt = 0; ; attempt++) {
      turn = startCoturn(secret);
      const answered = await until('coturn to answer STUN', async () => {
        turn.check();
        return spawnSync('turnutils_stunclient', ['-p', String(TURN_PORT), '127.0.0.1'], { timeout: 2000 }).status === 0;
      }, 10000).then(() => true, (e) => { if (attempt >= 2) throw new Error(`${e.message}; coturn's log: ${turn.log()}`); return false; });
      if (answered) break;
      await turn.stop();
      turn = null;
      const block = 58000 + Math.floor(Math.random() * 100) * 20;
      TURN_PORT = block;
      RELAY_PORTS = [block + 1, block + 19];
    }
    const ice = [...MEDIA, '--turn-secret', secret, '--turn-urls', `turn:127.0.0.1:${TURN_PORT}?transport=udp`];
    server = await startServer(ice);
    const dir = server.dir;
    const citizenBrowser = await launchBrowser();
    const operatorBrowser = await launchBrowser();
    browsers.push(citizenBrowser, operatorBrowser);
    const { code, start } = await bookVideo(await (await citizenBrowser.newContext()).newPage(), server);
    await server.stop({ keep: true });
    const paths = roomPaths(dir, code);
    server = await startServer([...ice, '--start-clock-at', start.toISOString()], dir);

    const citizen = await (await citizenBrowser.newContext()).newPage();
    const operator = await (await operatorBrowser.newContext()).newPage();
    citizen.setDefaultTimeout(15000);
    operator.setDefaultTimeout(15000);
    await enter(citizen, `${server.base}${paths.citizen}?ice=relay`);
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    await enter(operator, `${server.base}${paths.operator}`);
    await citizen.getByText('è entrato nella stanza').waitFor();
    await bothDecode(citizen, operator);
    const c = await stats(citizen);
    assert.equal(c.pair.local, 'relay', 'the citizen reaches the server only through TURN');
    assert.equal(c.pair.state, 'succeeded');

    // The credentials the citizen's socket was given: username EXPIRY:APPOINTMENT-citizen on
    // the real clock, at least an hour ahead; the password is HMAC-SHA1 of it with the secret,
    // and the secret itself is nowhere in the page.
    const servers = await citizen.evaluate(() => window.sportelloPc.getConfiguration().iceServers);
    assert.equal(servers.length, 1);
    const { username, credential } = servers[0];
    const m = username.match(/^(\d+):(\d+)-citizen$/);
    assert.ok(m, `TURN username ${username}`);
    const left = Number(m[1]) - Math.floor(Date.now() / 1000);
    assert.ok(left >= 3590 && left <= 4 * 3600, `credentials last ${left} s`);
    assert.equal(credential, hmac(secret, username));
    assert.ok(!(await citizen.content()).includes(secret), 'the secret is not in the page');
    if (process.env.DEBUG_TURN) console.log(turn.log());
    assert.match(turn.log(), new RegExp(`${m[1]}:${m[2]}-citizen`), 'coturn saw the citizen with these credentials');

    // coturn itself: the same credentials allocate; past their expiry, or with the expiry
    // moved without the secret, they are refused.
    assert.equal(allocate(username, credential), true, 'the credentials Sportello made allocate');
    const expired = `${Math.floor(Date.now() / 1000) - 60}:${m[2]}-citizen`;
    assert.equal(allocate(expired, hmac(secret, expired)), false, 'an expired credential is refused');
    assert.equal(allocate(`${Number(m[1]) + 86400}:${m[2]}-citizen`, credential), false, 'a lengthened one is refused');
    assert.match(turn.log(), new RegExp(`Cannot find credentials of user <${expired}>`));
  } finally {
    for (const b of browsers) await b.close();
    if (server) {
      await server.stop({ keep: true });
      rmSync(server.dir, { recursive: true, force: true });
    }
    if (turn) await turn.stop();
  }
});
