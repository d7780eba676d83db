// A citizen books an appointment through the pages in headless Chromium, on a phone-sized
// screen: office → service → slot → details (with a validation error first) → "check your
// email" → the verification link from the mailbox → confirmed, with the booking code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, powDone } from './helpers.mjs';

test('a citizen books a slot through the pages on a 360 px screen', async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    await page.goto(`${server.base}/`);
    assert.equal(await page.locator('h1').textContent(), 'Ricevimento uffici');
    // Nothing overflows the phone's width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);

    await page.getByRole('link', { name: 'Prenota · Anagrafe' }).click();
    await page.getByRole('link', { name: "Scegli giorno e orario · Carta d'identità elettronica" }).click();
    assert.match(await page.locator('h1').textContent(), /Carta d'identità elettronica/);
    // The page opens on the first week with free times, whatever the day today.
    const slot = page.locator('ul.slot-list a').first();
    const slotLabel = await slot.getAttribute('aria-label');
    assert.match(slotLabel, /ore \d{1,2}:\d\d/);
    await slot.click();

    await page.getByRole('textbox', { name: 'Nome', exact: true }).fill('Maria');
    await page.getByRole('textbox', { name: 'Cognome', exact: true }).fill('Rossi');
    await page.getByRole('textbox', { name: 'Email', exact: true }).fill('maria.rossi@example.it');
    await page.getByRole('textbox', { name: "Motivo dell'appuntamento" }).fill('Rinnovo della carta scaduta');
    // The identity card is one appointment per person: the fiscal code, typed as people do.
    await page.getByRole('textbox', { name: /Codice fiscale della persona che si presenta/ }).fill('rss mra 85t10 a562s');
    // Forgetting the consent: the error is shown next to it and what was typed stays.
    await powDone(page);
    await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
    assert.match(await page.locator('#consent-error').textContent(), /devi acconsentire/);
    assert.equal(await page.locator('#consent').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByRole('textbox', { name: 'Email', exact: true }).inputValue(), 'maria.rossi@example.it');
    assert.match(await page.title(), /^Errori nel modulo/);

    // The anti-abuse check ran again in the background for the new form (the first answer was
    // spent), and says so.
    await page.locator('label[for=consent]').click();
    await powDone(page);
    assert.match(await page.locator('altcha-widget').textContent(), /Verificato/);
    await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
    assert.equal(await page.locator('h1').textContent(), 'Controlla la tua email');
    assert.match(await page.locator('main').textContent(), /m\*\*\*@example\.it/);

    // The verification email, as the developer's mailbox shows it.
    await page.goto(`${server.admin}/posta`);
    await page.getByRole('link', { name: /Conferma la tua prenotazione/ }).click();
    const text = await page.locator('#mail-text').textContent();
    const link = text.match(/http:\/\/\S+\/conferma\/\S+/)[0];
    await page.goto(link);
    await page.getByRole('button', { name: 'Conferma la prenotazione' }).click();
    assert.equal(await page.locator('h1').textContent(), 'La tua prenotazione');
    assert.match(await page.locator('#notice').textContent(), /Prenotazione confermata/);
    const code = await page.locator('.booking-code').first().textContent();
    assert.match(code, /^SP-[A-Z2-9]{4}-[A-Z2-9]{4}$/);

    // The printable receipt carries the same code.
    await page.getByRole('link', { name: 'Ricevuta da stampare' }).click();
    assert.equal(await page.locator('.booking-code').first().textContent(), code);
  } finally {
    await browser.close();
    await server.stop();
  }
});
