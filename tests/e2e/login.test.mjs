// Logging in with SPID/CIE through a real OpenID Connect provider on loopback, in headless
// Chromium on a phone-sized screen: the booking form offers the login, comes back filled with
// what the provider vouched for, and books without a verification email (the provider vouched
// for the address); "my appointments" lists the booking with its links; logging out ends the
// session. Refused: an answer whose `state` this browser never sent, and a provider that is
// down (a clear page; the form still books by email).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, powDone, freePort } from './helpers.mjs';
import { startProvider } from './oidc-provider.mjs';

test('SPID/CIE login: a prefilled booking, my appointments, logout, and the refusals', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const provider = await startProvider(`${base}/accedi/ritorno`);
  const server = await startServer(['--listen', `127.0.0.1:${port}`, '--rate-limit-burst', '20',
    '--oidc-issuer', provider.issuer, '--oidc-client-id', 'sportello', '--oidc-client-secret', 'segreto-di-prova']);
  const browser = await launchBrowser();
  let providerUp = true;
  try {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
    phone.setDefaultTimeout(15000);
    const page = await phone.newPage();

    // The booking form offers the login and comes back filled in.
    const slots = await (await fetch(`${base}/api/servizi/4/orari`)).json();
    const slot = slots.find((s) => s.modes.includes('video'));
    await page.goto(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    await page.getByRole('link', { name: 'Entra con SPID o CIE' }).click();
    await page.getByLabel('Utente').fill('mario');
    await page.getByRole('button', { name: 'Entra' }).click();
    await page.waitForURL(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    assert.match(await page.locator('#login').textContent(), /Hai effettuato l'accesso come\s+Mario Rossi/);
    assert.equal(await page.getByRole('textbox', { name: 'Nome', exact: true }).inputValue(), 'Mario');
    assert.equal(await page.getByRole('textbox', { name: 'Cognome', exact: true }).inputValue(), 'Rossi');
    assert.equal(await page.getByRole('textbox', { name: 'Email', exact: true }).inputValue(), 'mario.rossi@example.it');
    assert.equal(await page.getByRole('textbox', { name: 'Codice fiscale' }).inputValue(), 'RSSMRA80A01H501U');

    // Booked at once: the provider vouched for the address, so no verification email.
    await page.locator('label[for=mode-video]').click();
    await page.getByRole('textbox', { name: "Motivo dell'appuntamento" }).fill('Pratica CILA');
    await page.locator('label[for=consent]').click();
    await powDone(page);
    await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
    await page.waitForURL(/\/prenotazione\//);
    const code = (await page.locator('.booking-code').first().textContent()).trim();
    const mail = await (await fetch(`${server.admin}/posta`)).text();
    assert.doesNotMatch(mail, /Conferma la tua prenotazione/, 'no verification email');
    assert.match(mail, /confermat/i, 'the confirmation email');

    // My appointments: the booking with its links.
    await page.goto(`${base}/i-miei-appuntamenti`);
    assert.match(await page.locator('#who').textContent(), /Mario Rossi · codice fiscale RSSMRA80A01H501U/);
    assert.match(await page.locator('#mine').textContent(), new RegExp(code));
    assert.ok(await page.getByRole('link', { name: 'Entra nella stanza' }).first().isVisible());
    await page.getByRole('link', { name: 'Vedi, sposta o annulla' }).first().click();
    assert.match(await page.locator('.booking-code').first().textContent(), new RegExp(code));

    // Logging out ends the session: the page asks for the login again.
    await page.goto(`${base}/i-miei-appuntamenti`);
    await page.getByRole('button', { name: 'Esci' }).click();
    await page.waitForURL(`${base}/?uscito=1`);
    const again = await page.request.get(`${base}/i-miei-appuntamenti`, { maxRedirects: 0 });
    assert.equal(again.status(), 303);
    assert.match(again.headers().location, /^\/accedi\?dopo=/);

    // An answer this browser did not start: refused, nobody logged in.
    const forged = await page.goto(`${base}/accedi/ritorno?code=abc&state=forged`);
    assert.equal(forged.status(), 400);
    assert.match(await page.locator('main').textContent(), /Questo accesso non è stato avviato da questa pagina/);

    // The provider down: a clear page, and the form still books by email.
    await provider.stop();
    providerUp = false;
    const down = await page.goto(`${base}/accedi?dopo=/servizi/4`);
    assert.equal(down.status(), 503);
    assert.match(await page.locator('main').textContent(), /L'accesso con SPID o CIE non risponde in questo momento/);
    const other = slots.find((s) => s.start_ts !== slot.start_ts);
    await page.goto(`${base}/servizi/4/prenota?inizio=${other.start_ts}`);
    assert.ok(await page.getByRole('link', { name: 'Entra con SPID o CIE' }).isVisible());
    assert.ok(await page.getByRole('button', { name: 'Richiedi appuntamento' }).isVisible());
    assert.ok(await page.getByRole('button', { name: 'Richiedi appuntamento' }).isVisible());
  } finally {
    await browser.close();
    await server.stop();
    if (providerUp) await provider.stop();
  }
});
