// The operator's console in headless Chromium against the real binary: the first administrator
// made by `sportello admin create`, login with the forced password change, today's agenda,
// booking on behalf of a caller for today, moving an appointment (the citizen's email carries
// the updated invitation with a higher SEQUENCE), the live "citizen waiting" mark, and joining
// a video appointment as the operator from the agenda.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, binary } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';

const MEDIA = ['--media-udp', '127.0.0.1:0', '--media-tcp', 'off'];

function cli(dir, args) {
  return execFileSync(binary(), ['--data-dir', dir, ...args], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
}

test('an operator logs in, books for a caller today, moves it, and joins a video call', async () => {
  let server = await startServer(MEDIA);
  const dir = server.dir;
  const browser = await launchBrowser();
  try {
    // A video appointment on a day whose later hours still offer the phone: the operator books
    // a caller by phone that day and then moves it to another phone time of the same day.
    const laterPhone = (s, all) => all.filter((o) => o.local_day === s.local_day && o.start_ts > s.start_ts && o.modes.includes('phone')).length >= 3;
    const { code, start } = await bookVideo(await (await browser.newContext()).newPage(), server, laterPhone);
    await server.stop({ keep: true });
    const made = cli(dir, ['admin', 'create', '--email', 'Admin@Comune.Esempio.it', '--name', 'Anna Admin']);
    const provisional = made.match(/provisional password: (\S+)/)[1];
    const citizenPath = new URL(cli(dir, ['room-link', code]).match(/citizen:\s+(\S+)/)[1]).pathname;
    // The day of the video appointment, four minutes before it: the citizen may already wait.
    server = await startServer([...MEDIA, '--start-clock-at', new Date(start.getTime() - 4 * 60000).toISOString()], dir);

    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(`${server.base}/ufficio`);
    assert.match(page.url(), /\/ufficio\/accesso\?dopo=/);
    await page.getByLabel('Email').fill('admin@comune.esempio.it');
    await page.getByLabel('Password').fill('sbagliata!!');
    await page.getByRole('button', { name: 'Accedi' }).click();
    await page.locator('#login-error').waitFor();
    await page.getByLabel('Password').fill(provisional);
    await page.getByRole('button', { name: 'Accedi' }).click();
    await page.getByText('Al primo accesso devi sostituire la password provvisoria').waitFor();
    await page.getByLabel('Password attuale').fill(provisional);
    await page.getByLabel('Nuova password', { exact: true }).fill('la mia frase segreta');
    await page.getByLabel('Ripeti la nuova password').fill('la mia frase segreta');
    await page.getByRole('button', { name: 'Salva la nuova password' }).click();

    // Today's agenda: the video appointment, with its join button.
    await page.getByText('Password cambiata.').waitFor();
    const row = page.locator('tr', { hasText: code });
    await row.waitFor();
    assert.match(await row.textContent(), /Maria Rossi/);
    assert.match(await row.textContent(), /In videochiamata/);
    assert.equal(await row.getByRole('link', { name: /Entra/ }).count(), 1);

    // Book on behalf of a caller, today (citizens cannot book the same day).
    await page.getByRole('link', { name: 'Prenota per un cittadino' }).click();
    await page.getByLabel('Servizio').selectOption('4');
    await page.getByRole('button', { name: 'Mostra orari' }).click();
    // The first time of the day that offers the phone (not a position in the list).
    await page.locator('input[name=start] + label', { hasText: 'Al telefono' }).first().click();
    await page.locator('label[for=mode-phone]').click();
    await page.getByRole('textbox', { name: 'Nome', exact: true }).fill('Giovanni');
    await page.getByRole('textbox', { name: 'Cognome' }).fill('Piras');
    await page.getByRole('textbox', { name: 'Email' }).fill('giovanni.piras@example.it');
    await page.getByRole('textbox', { name: 'Telefono' }).fill('079 123456');
    await page.getByRole('textbox', { name: 'Motivo' }).fill('Ha telefonato per una pratica edilizia');
    await page.locator('label[for=consent]').click();
    await page.getByRole('button', { name: 'Prenota e conferma' }).click();
    await page.getByText('Appuntamento prenotato e confermato').waitFor();
    assert.match(await page.locator('#status').textContent(), /Confermato/);
    const bookedWhen = await page.locator('#when').textContent();
    const today = new Intl.DateTimeFormat('it-IT', { timeZone: 'Europe/Rome', day: 'numeric', month: 'long', year: 'numeric' }).format(start);
    assert.ok(bookedWhen.includes(today), `${bookedWhen} is today, ${today}`);

    // Move it to another free time: the citizen gets the updated invitation.
    const options = await page.locator('#inizio option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })));
    // A later time the same day that still offers the phone.
    const target = options.filter((o) => o.label.includes(today) && o.label.includes('Al telefono')).pop();
    assert.ok(target, JSON.stringify(options.slice(0, 5)));
    await page.locator('#inizio').selectOption(target.value);
    await page.getByRole('button', { name: 'Sposta e avvisa il cittadino' }).click();
    await page.locator('#outcome').waitFor();
    assert.match(await page.locator('#outcome').textContent(), /Appuntamento spostato/);
    assert.ok(target.label.includes(await page.locator('#when').textContent().then((w) => w.split('ore ')[1])), 'the new time shows');
    const mail = await ctx.newPage();
    await mail.goto(`${server.admin}/posta`);
    const moved = mail.locator('tr', { hasText: 'giovanni.piras@example.it' }).filter({ hasText: 'Appuntamento spostato' });
    await moved.getByRole('link').click();
    const ics = await (await fetch(`${server.admin}${new URL(mail.url()).pathname}/invito.ics`)).text();
    assert.match(ics, /METHOD:REQUEST/);
    assert.match(ics, /SEQUENCE:1/);
    assert.match(await mail.locator('#mail-text').textContent(), /l'ufficio ha spostato il tuo appuntamento/);

    // The citizen enters the room; the agenda shows it live, then the operator joins from it.
    const citizen = await (await browser.newContext({ viewport: { width: 360, height: 740 } })).newPage();
    citizen.setDefaultTimeout(15000);
    await page.goto(`${server.base}/ufficio`);
    const badge = page.locator('tr', { hasText: code }).locator('.waiting');
    assert.equal(await badge.isHidden(), true);
    await citizen.goto(`${server.base}${citizenPath}`);
    await citizen.getByRole('button', { name: 'Entra nella stanza' }).click();
    await citizen.getByRole('button', { name: 'Collegati' }).click();
    await citizen.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();
    await badge.waitFor({ state: 'visible' });
    assert.match(await badge.textContent(), /In attesa nella stanza/);
    const [call] = await Promise.all([
      ctx.waitForEvent('page'),
      page.locator('tr', { hasText: code }).getByRole('link', { name: /Entra/ }).click(),
    ]);
    call.setDefaultTimeout(15000);
    await call.getByRole('button', { name: 'Entra nella stanza' }).click();
    await call.getByRole('button', { name: 'Collegati' }).click();
    await citizen.getByText('è entrato nella stanza').waitFor();
    assert.match(new URL(call.url()).pathname, /^\/stanza\//);

    // Logging out ends the session.
    await page.getByRole('button', { name: 'Esci' }).click();
    await page.goto(`${server.base}/ufficio`);
    assert.match(page.url(), /\/ufficio\/accesso/);
  } finally {
    await browser.close();
    await server.stop({ keep: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
