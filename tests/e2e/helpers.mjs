// Starts the real `sportello` binary on a free loopback port with a fresh data folder, and
// Debian's Chromium with the flags this machine needs.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

// A free TCP port on loopback, from 20000–31999: below Linux's ephemeral range (32768 on), so
// that no listener on port 0 (a server's media sockets) can take it between this answer and the
// server's bind. Each test process starts at its own place in the range and never hands out a
// port twice.
let nextPort = (process.pid * 7919) % 12000;
export async function freePort() {
  for (let tries = 0; tries < 12000; tries++) {
    const port = 20000 + (nextPort++ % 12000);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000..32000');
}

// The tests' "today": SPORTELLO_TEST_NOW (an ISO instant) or Monday 23 November 2026, 11:00 in
// Rome. Every server starts with its clock there unless a test moves it (`--start-clock-at`), so
// that no test depends on the day or the hour it runs; scripts/test runs the suite under several.
export const TEST_NOW = new Date(process.env.SPORTELLO_TEST_NOW || '2026-11-23T10:00:00Z');
if (Number.isNaN(TEST_NOW.getTime())) throw new Error(`SPORTELLO_TEST_NOW=${process.env.SPORTELLO_TEST_NOW} is not a date`);

export function binary() {
  const bin = process.env.SPORTELLO_BIN;
  if (!bin) throw new Error('SPORTELLO_BIN is not set: run the tests with scripts/test');
  return bin;
}

// Starts the server; `dir` reuses a data folder (and keeps it on stop), `args` adds flags. The
// clock starts at TEST_NOW unless `args` has its own `--start-clock-at`; the server listens on
// a free port unless `args` has `--listen`, and its public URL is its own address unless `args`
// has `--public-url` (a proxy's). `base` is the server's own address, `admin` its administration
// listener (the local mailbox at /posta, /metrics), on a free port unless `args` has
// `--admin-listen`. A new data folder gets the demo comune (--demo). Plain HTTP, unless `args`
// has `--https-listen`: then HTTPS with the development certificate, and `base` is that address
// (pages need `ignoreHTTPSErrors`).
export async function startServer(extraArgs = [], reuseDir = null) {
  const bin = binary();
  const listen = extraArgs.includes('--listen') ? extraArgs[extraArgs.indexOf('--listen') + 1] : `127.0.0.1:${await freePort()}`;
  const adminListen = extraArgs.includes('--admin-listen') ? extraArgs[extraArgs.indexOf('--admin-listen') + 1] : `127.0.0.1:${await freePort()}`;
  const dir = reuseDir || mkdtempSync(join(tmpdir(), 'sportello-e2e-'));
  const https = extraArgs.includes('--https-listen');
  const base = https ? `https://${extraArgs[extraArgs.indexOf('--https-listen') + 1]}` : `http://${listen}`;
  const admin = `http://${adminListen}`;
  const child = spawn(bin, [...(https ? ['--tls', 'dev'] : ['--tls', 'off']), ...(extraArgs.includes('--listen') ? [] : ['--listen', listen]), ...(extraArgs.includes('--admin-listen') ? [] : ['--admin-listen', adminListen]), '--data-dir', dir, '--demo', ...(extraArgs.includes('--public-url') ? [] : ['--public-url', base]), ...(extraArgs.includes('--worker-interval') ? [] : ['--worker-interval', '1']), ...(extraArgs.includes('--start-clock-at') ? [] : ['--start-clock-at', TEST_NOW.toISOString()]), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.SPORTELLO_LOG || 'warn' },
  });
  let stderr = '';
  // The server logs to stdout; kept in memory for error messages, and in a file on request.
  const keep = (d) => { stderr += d; if (process.env.SPORTELLO_LOG_FILE) appendFileSync(process.env.SPORTELLO_LOG_FILE, d); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      // The plain listener answers /healthz itself (with HTTPS it redirects everything else).
      const r = await fetch(`http://${listen}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`sportello exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`sportello did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    admin,
    dir,
    pid: child.pid,
    async stop({ keep = false } = {}) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      if (!keep && !reuseDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
}

// Waits until the booking form's proof of work is done: the widget has found the answer and
// put it in the form (as a citizen waits for the box to show "Verificato").
export async function powDone(page) {
  await page.waitForFunction(() => !!document.querySelector('form input[name=altcha]')?.value, null, { timeout: 30000 });
}

// The first administrator, made by `sportello admin create` on the (stopped) server's data
// folder: returns the provisional password.
export function createAdmin(dir, email = 'admin@comune.esempio.it', name = 'Anna Admin') {
  const made = execFileSync(binary(), ['--data-dir', dir, 'admin', 'create', '--email', email, '--name', name], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
  return made.match(/provisional password: (\S+)/)[1];
}

// Logs in with the provisional password and replaces it, as the console asks at the first login.
export async function firstLogin(page, base, email, provisional) {
  await page.goto(`${base}/ufficio/accesso`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(provisional);
  await page.getByRole('button', { name: 'Accedi' }).click();
  await page.getByLabel('Password attuale').fill(provisional);
  await page.getByLabel('Nuova password', { exact: true }).fill('la mia frase segreta');
  await page.getByLabel('Ripeti la nuova password').fill('la mia frase segreta');
  await page.getByRole('button', { name: 'Salva la nuova password' }).click();
  await page.getByText('Password cambiata.').waitFor();
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// The violations of WCAG 2.1 A and AA rules on the page as it is now, one line each.
export async function violations(page) {
  // Evaluated through the DevTools protocol: the pages' content security policy allows no
  // injected script, and needs not to.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    resultTypes: ['violations'],
  }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}
