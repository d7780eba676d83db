// Accessibility: axe-core's WCAG 2.1 A and AA rules on every citizen page and every console page,
// in headless Chromium at 1280 and at 360 px wide, with zero violations. The pages are reached as
// people reach them: a booking through the form and the mailbox, the first administrator made by
// `sportello admin create`, the forced password change, then each console page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, launchBrowser, binary, powDone, createAdmin, violations } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';

const WIDTHS = [1280, 360];
const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off'];

function cli(dir, args) {
  return execFileSync(binary(), ['--data-dir', dir, ...args], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
}

// Opens each path at each width and collects what axe finds, by page.
async function audit(browser, base, paths, storageState) {
  const found = [];
  for (const width of WIDTHS) {
    const ctx = await browser.newContext({ viewport: { width, height: 800 }, locale: 'it-IT', storageState });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    for (const path of paths) {
      const r = await page.goto(`${base}${path}`);
      assert.ok(r.status() < 500, `${path}: ${r.status()}`);
      for (const v of await violations(page)) found.push(`${width}px ${path}: ${v}`);
    }
    await ctx.close();
  }
  return found;
}

test('every citizen and console page passes axe-core WCAG 2.1 AA at 1280 and 360 px', async () => {
  let server = await startServer(MEDIA);
  const dir = server.dir;
  const browser = await launchBrowser();
  try {
    // A confirmed video appointment: its manage page, and the form pages on the way.
    const booker = await (await browser.newContext()).newPage();
    const { code, start } = await bookVideo(booker, server);
    const day = start.toLocaleDateString('sv-SE', { timeZone: 'Europe/Rome' });
    const manage = new URL(booker.url()).pathname;
    assert.match(manage, /^\/prenotazione\//);
    const slots = await (await fetch(`${server.base}/api/servizi/11/orari`)).json();
    const citizen = [
      '/',
      '/uffici/8',
      '/servizi/11',
      `/servizi/11/prenota?inizio=${slots[0].start_ts}`,
      manage,
      `${manage}/sposta`,
      `${manage}/annulla`,
      '/privacy',
      '/accessibilita',
      '/prova-video',
      '/i-miei-dati',
      '/uffici/999999',
    ];
    await server.stop({ keep: true });
    const provisional = createAdmin(dir);
    const room = new URL(cli(dir, ['room-link', code]).match(/citizen:\s+(\S+)/)[1]).pathname;
    server = await startServer(MEDIA, dir);

    // The citizen's pages, the room's countdown and the booking form with its errors.
    const found = await audit(browser, server.base, [...citizen, room], undefined);
    // The same pages in German, the third language, which comes from its catalogue alone
    // (the room's and the camera test's scripts take their texts from it too).
    {
      const ctx = await browser.newContext({ viewport: { width: 360, height: 800 }, locale: 'de-DE' });
      const page = await ctx.newPage();
      await page.goto(`${server.base}/lingua/de`);
      for (const path of ['/', '/uffici/8', '/servizi/11', manage, '/prova-video', '/uffici/999999', room]) {
        await page.goto(`${server.base}${path}`);
        assert.equal(await page.locator('html').getAttribute('lang'), 'de', path);
        for (const v of await violations(page)) found.push(`360px de ${path}: ${v}`);
      }
      // The room's script speaks German: the countdown it rewrites every second counts in
      // German units.
      const first = await page.locator('#countdown').innerText();
      await page.waitForFunction((t) => document.getElementById('countdown').textContent !== t, first);
      const left = await page.locator('#countdown').innerText();
      assert.match(left, /\b(Sekunde|Sekunden)$/, left);
      assert.doesNotMatch(left, /second|secondi/, left);
      await ctx.close();
    }
    for (const width of WIDTHS) {
      const ctx = await browser.newContext({ viewport: { width, height: 800 }, locale: 'it-IT' });
      const page = await ctx.newPage();
      await page.goto(`${server.base}/servizi/11/prenota?inizio=${slots[0].start_ts}`);
      await powDone(page);
      await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
      await page.locator('.invalid-feedback').first().waitFor();
      for (const v of await violations(page)) found.push(`${width}px booking form with errors: ${v}`);
      await ctx.close();
    }

    // The console: login (with its error), the forced password change, then every page.
    const ctx = await browser.newContext({ locale: 'it-IT' });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(`${server.base}/ufficio/accesso`);
    for (const v of await violations(page)) found.push(`login: ${v}`);
    await page.getByLabel('Email').fill('admin@comune.esempio.it');
    await page.getByLabel('Password').fill('sbagliata!!');
    await page.getByRole('button', { name: 'Accedi' }).click();
    await page.locator('#login-error').waitFor();
    for (const v of await violations(page)) found.push(`login with an error: ${v}`);
    await page.getByLabel('Password').fill(provisional);
    await page.getByRole('button', { name: 'Accedi' }).click();
    await page.getByLabel('Password attuale').waitFor();
    for (const v of await violations(page)) found.push(`password change: ${v}`);
    await page.getByLabel('Password attuale').fill(provisional);
    await page.getByLabel('Nuova password', { exact: true }).fill('la mia frase segreta');
    await page.getByLabel('Ripeti la nuova password').fill('la mia frase segreta');
    await page.getByRole('button', { name: 'Salva la nuova password' }).click();
    await page.getByText('Password cambiata.').waitFor();
    const state = await ctx.storageState();
    const appointment = await page.evaluate(async (code) => {
      const html = await (await fetch(`/ufficio/dati-personali?email=${encodeURIComponent('maria.rossi@example.it')}`)).text();
      return html.includes(code);
    }, code);
    assert.ok(appointment, 'the booking is found by its email');
    const ids = await page.evaluate(async () => {
      const html = await (await fetch('/ufficio/config')).text();
      const office = html.match(/\/ufficio\/config\/uffici\/(\d+)/)[1];
      const officePage = await (await fetch(`/ufficio/config/uffici/${office}`)).text();
      return {
        office,
        service: officePage.match(/\/ufficio\/config\/servizi\/(\d+)/)[1],
        calendar: officePage.match(/\/ufficio\/config\/calendari\/(\d+)/)[1],
      };
    });
    const agenda = await page.evaluate(async (day) => (await (await fetch(`/ufficio?giorno=${day}`)).text()).match(/\/ufficio\/appuntamenti\/(\d+)/)?.[1], day);
    assert.ok(agenda, `the appointment in the agenda of ${day}`);
    const consolePages = [
      '/ufficio',
      '/ufficio/prenota',
      '/ufficio/prenota?servizio=11',
      '/ufficio/statistiche',
      '/ufficio/config',
      `/ufficio/config/uffici/${ids.office}`,
      `/ufficio/config/servizi/${ids.service}`,
      `/ufficio/config/calendari/${ids.calendar}`,
      '/ufficio/account',
      '/ufficio/registro',
      '/ufficio/password',
      '/ufficio/dati-personali',
      '/ufficio/cerca',
      '/ufficio/lista-attesa',
      `/ufficio/cerca?q=${encodeURIComponent('maria.rossi@example.it')}`,
      `/ufficio/dati-personali?email=${encodeURIComponent('maria.rossi@example.it')}`,
      `/ufficio/appuntamenti/${agenda}`,
      `/ufficio?giorno=${day}`,
    ];
    await ctx.close();
    found.push(...await audit(browser, server.base, consolePages, state));
    assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
  } finally {
    await browser.close();
    await server.stop();
  }
});
