// Identity and privacy in headless Chromium, on a phone-sized screen for the citizen: the privacy
// notice and the accessibility statement from the footer; a parent books the identity card for
// two children with one email (the fiscal code names each), and the same child again is refused;
// an administrator finds the parent's appointments, downloads them as JSON and CSV, and erases
// them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, powDone, createAdmin, firstLogin } from './helpers.mjs';

const PARENT = 'genitore@example.it';
const GIULIA = 'RSSGLI12C45A192Q';
const LUCA = 'RSSLCU15M10A192J';

// Books the identity card at the `n`-th free time for the person with `code`, from the parent's
// email, and returns the page the booking ends on.
async function bookCard(page, base, n, code) {
  const slots = await (await fetch(`${base}/api/servizi/11/orari`)).json();
  await page.goto(`${base}/servizi/11/prenota?inizio=${slots[n].start_ts}`);
  await page.getByRole('textbox', { name: 'Nome', exact: true }).fill('Bambino');
  await page.getByRole('textbox', { name: 'Cognome', exact: true }).fill('Rossi');
  await page.getByRole('textbox', { name: 'Email', exact: true }).fill(PARENT);
  await page.getByRole('textbox', { name: /Codice fiscale della persona che si presenta/ }).fill(code);
  await page.getByRole('textbox', { name: "Motivo dell'appuntamento" }).fill('Prima carta');
  await page.locator('label[for=consent]').click();
  await powDone(page);
  await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
  return page;
}

// Confirms the newest verification email in the local mailbox.
async function confirmLatest(page, server) {
  await page.goto(`${server.admin}/posta`);
  await page.getByRole('link', { name: /Conferma la tua prenotazione/ }).first().click();
  const link = (await page.locator('#mail-text').textContent()).match(/https?:\/\/\S+\/conferma\/\S+/)[0];
  await page.goto(link);
  await page.getByRole('button', { name: 'Conferma la prenotazione' }).click();
  await page.getByText('Prenotazione confermata').first().waitFor();
}

test("privacy pages, a family booking and a person's data exported and erased", async () => {
  // A parent books, confirms and tries again several times within a minute: more than the
  // default burst of five posts per client address.
  const LIMITS = ['--rate-limit-burst', '20'];
  let server = await startServer(LIMITS);
  const browser = await launchBrowser();
  try {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
    phone.setDefaultTimeout(15000);
    const page = await phone.newPage();

    // The footer's links.
    await page.goto(`${server.base}/`);
    await page.getByRole('link', { name: 'Informativa sulla privacy' }).click();
    assert.equal(await page.locator('h1').textContent(), 'Informativa sulla privacy');
    assert.match(await page.locator('main').textContent(), /Il titolare del trattamento è Comune di Esempio/);
    assert.match(await page.locator('#notice-version').textContent(), /^[0-9a-f]{12}$/);
    await page.getByRole('link', { name: 'Dichiarazione di accessibilità' }).click();
    assert.equal(await page.locator('h1').textContent(), 'Dichiarazione di accessibilità');
    assert.ok(await page.getByRole('heading', { name: 'Meccanismo di feedback e recapiti' }).isVisible());

    // Two children, one email; then Luca again, typed with spaces and in lower case.
    await bookCard(page, server.base, 0, GIULIA);
    assert.equal(await page.locator('h1').textContent(), 'Controlla la tua email');
    await confirmLatest(page, server);
    await bookCard(page, server.base, 1, LUCA);
    assert.equal(await page.locator('h1').textContent(), 'Controlla la tua email');
    await confirmLatest(page, server);
    await bookCard(page, server.base, 2, 'rss lcu 15m10 a192j');
    assert.match(await page.locator('#alert').textContent(), /Questa persona .* ha già un appuntamento attivo/);
    // A code with a wrong check character is said at its field.
    await bookCard(page, server.base, 3, 'RSSLCU15M10A192X');
    assert.match(await page.locator('#fiscal_code-error').textContent(), /Codice fiscale non valido/);

    // The administrator's side.
    await server.stop({ keep: true });
    const provisional = createAdmin(server.dir);
    server = await startServer(LIMITS, server.dir);
    const desk = await browser.newContext({ locale: 'it-IT', acceptDownloads: true });
    desk.setDefaultTimeout(15000);
    const admin = await desk.newPage();
    await firstLogin(admin, server.base, 'admin@comune.esempio.it', provisional);
    // The console's search finds one child by fiscal code, and opens the appointment.
    await admin.getByRole('link', { name: 'Cerca', exact: true }).click();
    await admin.getByLabel(/Codice, email, telefono/).fill(GIULIA);
    await admin.getByRole('button', { name: 'Cerca' }).click();
    assert.equal(await admin.locator('#found tbody tr').count(), 1);
    await admin.locator('#found tbody a').first().click();
    await admin.waitForURL(/\/ufficio\/appuntamenti\/\d+/);
    assert.match(await admin.locator('main').textContent(), new RegExp(GIULIA));
    await admin.getByRole('link', { name: 'Dati personali' }).click();
    await admin.getByLabel('Email').fill(PARENT);
    await admin.getByRole('button', { name: 'Cerca' }).click();
    assert.match(await admin.locator('#found caption').textContent(), /Appuntamenti trovati: 2/);
    const saved = async (name) => {
      const [download] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('link', { name }).click()]);
      return readFileSync(await download.path(), 'utf8');
    };
    const json = JSON.parse(await saved('Esporta (JSON)'));
    assert.deepEqual(json.appointments.map((a) => a.fiscal_code).sort(), [GIULIA, LUCA]);
    assert.ok(json.appointments.every((a) => a.email === PARENT && a.privacy_notice_version));
    const csv = (await saved('Esporta (CSV)')).trim().split('\n');
    assert.equal(csv.length, 3);
    assert.match(csv[0], /^codice,ufficio,servizio/);
    await admin.locator('label[for=conferma]').click();
    await admin.getByRole('button', { name: 'Cancella i dati' }).click();
    assert.match(await admin.locator('#outcome').textContent(), /Dati cancellati da 2 appuntamenti/);
    await admin.getByLabel('Email').fill(PARENT);
    await admin.getByRole('button', { name: 'Cerca' }).click();
    assert.match(await admin.locator('#none').textContent(), /Nessun appuntamento/);
    // The audit log tells it, without the person.
    await admin.getByRole('link', { name: 'Registro modifiche' }).click();
    const log = await admin.locator('#audit').textContent();
    assert.match(log, /Dati di una persona cancellati/);
    assert.match(log, /Dati di una persona esportati/);
    assert.ok(!log.includes(PARENT) && !log.includes(GIULIA));
  } finally {
    await browser.close();
    await server.stop();
  }
});
