// The waitlist in headless Chromium on a 360 px phone: from the mayor's page the citizen joins
// the waitlist (the modes and days that suit her), confirms with the email's link, is offered
// the first free seat that fits (held for her, the email says until when) and books it with
// the email's button.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, violations } from './helpers.mjs';

test('a citizen joins the waitlist, confirms, and books the seat it offers', async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = await (await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' })).newPage();
    page.setDefaultTimeout(10000);
    await page.goto(`${server.base}/servizi/1`);
    await page.getByRole('link', { name: "Mettiti in lista d'attesa" }).click();
    assert.match(await page.locator('h1').textContent(), /^Lista d'attesa/);
    // Forgetting the consent: said, nothing sent, what was typed stays.
    await page.getByLabel('Nome', { exact: true }).fill('Giulia');
    await page.getByLabel('Cognome', { exact: true }).fill('Serra');
    await page.getByLabel('Email', { exact: true }).fill('giulia.serra@example.it');
    await page.locator('label[for=wl-mode-video]').click(); // in person only
    await page.evaluate(() => document.getElementById('wl-consent').removeAttribute('required'));
    await page.getByRole('button', { name: "Mettimi in lista d'attesa" }).click();
    assert.match(await page.locator('#errors').textContent(), /Consenso/);
    assert.equal(await page.getByLabel('Email', { exact: true }).inputValue(), 'giulia.serra@example.it');
    assert.deepEqual(await violations(page), []);
    await page.locator('label[for=wl-consent]').click();
    await page.getByRole('button', { name: "Mettimi in lista d'attesa" }).click();
    await page.locator('#sent').waitFor();

    await page.goto(`${server.admin}/posta`);
    await page.getByRole('link', { name: /Conferma la lista d'attesa/ }).click();
    const confirm = (await page.locator('#mail-text').textContent()).match(/http:\/\/\S+\/lista-attesa\/\S+/)[0];
    await page.goto(confirm);
    await page.getByRole('button', { name: "Conferma l'iscrizione" }).click();
    // The mayor has free Monday times: the first is offered at once.
    assert.equal(await page.locator('#place').getAttribute('data-status'), 'offered');
    await page.goto(`${server.admin}/posta`);
    await page.getByRole('link', { name: /Si è liberato un posto/ }).click();
    const offer = await page.locator('#mail-text').textContent();
    assert.match(offer, /tenuto per te fino a/);
    assert.match(offer, /In presenza/);
    await page.goto(offer.match(/http:\/\/\S+\/conferma\/\S+/)[0]);
    await page.getByRole('button', { name: 'Conferma la prenotazione' }).click();
    // The mayor approves his appointments: the request goes to his office.
    assert.match(await page.locator('#notice').textContent(), /la richiesta è stata inviata all'ufficio/);
  } finally {
    await browser.close();
    await server.stop();
  }
});
