// The booking's page and the emails in headless Chromium, on a phone-sized screen: "add to
// calendar" downloads the invitation and links Google's and Outlook's pages at the booked time;
// "Ritrova la prenotazione" sends the list of one's appointments by email; the confirmation
// email's "Annulla l'appuntamento" opens a one-step page whose button cancels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, violations } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';

const compact = (d) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

test('add to calendar, find a booking by email, and cancel in one step from the email', async () => {
  const server = await startServer(['--rate-limit-burst', '20']);
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT', acceptDownloads: true });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    const { code, start } = await bookVideo(page, server);

    // On the booking's page.
    const google = await page.getByRole('link', { name: /Google Calendar/ }).getAttribute('href');
    assert.match(google, new RegExp(`dates=${compact(start)}/`));
    const outlook = await page.getByRole('link', { name: /Outlook/ }).getAttribute('href');
    assert.match(outlook, new RegExp(`startdt=${start.toISOString().replace(/\.\d{3}/, '')}`));
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'File per il calendario (.ics)' }).click(),
    ]);
    const ics = readFileSync(await download.path(), 'utf8');
    assert.match(ics, /BEGIN:VCALENDAR/);
    assert.match(ics, new RegExp(`DTSTART:${compact(start)}`));
    assert.deepEqual(await violations(page), []);

    // "I lost my email": from the footer, the list comes by email.
    await page.getByRole('link', { name: 'Ritrova la prenotazione' }).click();
    await page.getByRole('textbox', { name: 'Email' }).fill('maria.rossi@example.it');
    await page.getByRole('button', { name: "Mandami l'elenco" }).click();
    await page.locator('#sent').waitFor();
    assert.deepEqual(await violations(page), []);
    await page.goto(`${server.admin}/posta`);
    await page.getByRole('link', { name: /I tuoi appuntamenti/ }).first().click();
    assert.match(await page.locator('#mail-text').textContent(), new RegExp(code));

    // From the confirmation email: the link shows a page, the button cancels.
    await page.goto(`${server.admin}/posta`);
    await page.getByRole('link', { name: /Appuntamento confermato/ }).first().click();
    const cancel = (await page.locator('#mail-text').textContent()).match(/https?:\/\/\S+\/annulla/)[0];
    await page.goto(cancel);
    assert.match(await page.locator('main').textContent(), new RegExp(code));
    await page.getByRole('button', { name: "Sì, annulla l'appuntamento" }).click();
    await page.locator('#notice').getByText("L'appuntamento è stato annullato").waitFor();
  } finally {
    await browser.close();
    await server.stop();
  }
});
