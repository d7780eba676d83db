// An office's extraordinary closure in headless Chromium: a citizen has a video appointment at
// the building office; the administrator closes the office that day for a flood from the
// office's configuration page, sees the appointment with a proposed new time, moves it with one
// button; the citizen's email carries the new time and the reason, and the office's public page
// shows the notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, createAdmin, firstLogin, violations } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';

test('the office closes for a day and moves the appointments it hits in one action', async () => {
  let server = await startServer();
  const dir = server.dir;
  const browser = await launchBrowser();
  try {
    const citizen = await (await browser.newContext({ locale: 'it-IT' })).newPage();
    const { start } = await bookVideo(citizen, server);
    const day = start.toLocaleDateString('sv-SE', { timeZone: 'Europe/Rome' });
    await server.stop({ keep: true });
    const provisional = createAdmin(dir);
    server = await startServer([], dir);

    const page = await (await browser.newContext({ locale: 'it-IT' })).newPage();
    page.setDefaultTimeout(10000);
    await firstLogin(page, server.base, 'admin@comune.esempio.it', provisional);
    await page.goto(`${server.base}/ufficio/config`);
    await page.getByRole('link', { name: /^Edilizia privata/ }).first().click();
    await page.getByLabel('Dal', { exact: true }).fill(day);
    await page.getByLabel('Motivo (lo leggono i cittadini)').fill('Allagamento dei locali');
    await page.getByRole('button', { name: 'Chiudi', exact: true }).click();
    assert.match(await page.locator('h1').textContent(), /^Chiusura:/);
    assert.match(await page.locator('#closure-facts').textContent(), /tutto l'ufficio · Allagamento dei locali/);
    const row = page.locator('#hits tbody tr');
    assert.equal(await row.count(), 1);
    assert.match(await row.locator('td').nth(1).textContent(), /Maria Rossi/);
    const proposed = await row.locator('td').nth(3).textContent();
    assert.match(proposed, /ore \d{1,2}:\d\d/);
    assert.deepEqual(await violations(page), []);
    await page.getByRole('button', { name: 'Sposta tutti agli orari proposti' }).click();
    assert.match(await page.locator('#outcome').textContent(), /Appuntamenti spostati: 1\. Non spostati: 0\./);
    await page.locator('#no-hits').waitFor();

    // The citizen's email says the new time and why; the office's page shows the notice.
    await citizen.goto(`${server.admin}/posta`);
    await citizen.getByRole('link', { name: /Appuntamento spostato/ }).first().click();
    const text = await citizen.locator('#mail-text').textContent();
    assert.match(text, /Allagamento dei locali/);
    assert.ok(text.includes(proposed.trim().split(', ore ')[0]), `${proposed} in ${text}`);
    await citizen.goto(`${server.base}/`);
    await citizen.getByRole('link', { name: 'Prenota · Edilizia privata' }).click();
    assert.match(await citizen.locator('#closure-notice').textContent(), /Allagamento dei locali/);
  } finally {
    await browser.close();
    await server.stop();
  }
});
