// Logging in with SPID/CIE through a real OpenID Connect provider on loopback, in headless
// Chromium on a phone-sized screen: the booking form offers the login, comes back filled with
// what the provider vouched for, and books without a verification email (the provider vouched
// for the address); "my appointments" lists the booking with its links; logging out ends the
// session. Refused: an answer whose `state` this browser never sent, and a provider that is
// down (a clear page; the form still books by email).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, powDone, freePort, createAdmin, firstLogin, violations } from './helpers.mjs';
import { startProvider } from './oidc-provider.mjs';

// A phone-sized page, in Italian.
async function phonePage(browser) {
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
  phone.setDefaultTimeout(15000);
  return phone.newPage();
}

// Follows "Entra con SPID o CIE" on the page and logs in at the provider as `user`.
async function logIn(page, user) {
  await page.getByRole('link', { name: 'Entra con SPID o CIE' }).click();
  await page.getByLabel('Utente').fill(user);
  await page.getByRole('button', { name: 'Entra' }).click();
}

// The server's flags for the provider at `issuer`, this site's client there.
const oidc = (issuer) => ['--oidc-issuer', issuer, '--oidc-client-id', 'sportello', '--oidc-client-secret', 'segreto-di-prova'];

test('SPID/CIE login: a prefilled booking, my appointments, logout, and the refusals', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const provider = await startProvider(`${base}/accedi/ritorno`);
  const server = await startServer(['--listen', `127.0.0.1:${port}`, '--rate-limit-burst', '20',
    ...oidc(provider.issuer)]);
  const browser = await launchBrowser();
  let providerUp = true;
  try {
    const page = await phonePage(browser);

    // The booking form offers the login and comes back filled in.
    const slots = await (await fetch(`${base}/api/servizi/4/orari`)).json();
    const slot = slots.find((s) => s.modes.includes('video'));
    await page.goto(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    const found = (await violations(page)).map((v) => `form with the login: ${v}`);
    await logIn(page, 'mario');
    await page.waitForURL(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    assert.match(await page.locator('#login').textContent(), /Hai effettuato l'accesso come\s+Mario Rossi/);
    assert.equal(await page.getByRole('textbox', { name: 'Nome', exact: true }).inputValue(), 'Mario');
    assert.equal(await page.getByRole('textbox', { name: 'Cognome', exact: true }).inputValue(), 'Rossi');
    assert.equal(await page.getByRole('textbox', { name: 'Email', exact: true }).inputValue(), 'mario.rossi@example.it');
    assert.equal(await page.getByRole('textbox', { name: 'Codice fiscale' }).inputValue(), 'RSSMRA80A01H501U');
    found.push(...(await violations(page)).map((v) => `form logged in: ${v}`));

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
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'I miei appuntamenti' }).click();
    assert.match(await page.locator('#who').textContent(), /Mario Rossi · codice fiscale RSSMRA80A01H501U/);
    found.push(...(await violations(page)).map((v) => `my appointments: ${v}`));
    assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
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

// Every ID token that fails a check is refused, and nobody is logged in: the wrong nonce, an
// expired token, one signed with a key the provider does not publish, a level lower than asked;
// and the provider's answer replayed. The same provider answering correctly logs in.
test('a tampered ID token, an expired one, a foreign key, a low level or a replayed answer log nobody in', async () => {
  const { startHostileProvider } = await import('./hostile-oidc.mjs');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const provider = await startHostileProvider();
  const server = await startServer(['--listen', `127.0.0.1:${port}`,
    ...oidc(provider.issuer)]);
  const browser = await launchBrowser();
  try {
    const ctx = await browser.newContext({ locale: 'it-IT' });
    ctx.setDefaultTimeout(15000);
    const page = await ctx.newPage();
    const loggedIn = async () => (await page.request.get(`${base}/i-miei-appuntamenti`, { maxRedirects: 0 })).status() === 200;
    for (const mode of ['wrong-nonce', 'expired', 'other-key', 'low-level']) {
      provider.mode = mode;
      const r = await page.goto(`${base}/accedi?dopo=/i-miei-appuntamenti`);
      assert.equal(r.status(), 400, mode);
      assert.match(await page.locator('main').textContent(), /ha risposto con dati che non si possono accettare/, mode);
      assert.equal(await loggedIn(), false, mode);
    }
    provider.mode = 'good';
    const r = await page.goto(`${base}/accedi?dopo=/i-miei-appuntamenti`);
    assert.equal(r.status(), 200);
    assert.match(await page.locator('#who').textContent(), /Mario Rossi/);
    // The same answer again (a replay from the history, or by a third party): refused.
    const answer = (await page.request.get(`${base}/accedi?dopo=/`, { maxRedirects: 0 })).headers().location;
    const back = (await page.request.get(answer, { maxRedirects: 0 })).headers().location;
    const first = await page.goto(back);
    assert.equal(first.status(), 200);
    const replay = await page.goto(back);
    assert.equal(replay.status(), 400);
    assert.match(await page.locator('main').textContent(), /Questo accesso non è stato avviato da questa pagina/);
  } finally {
    await browser.close();
    await server.stop();
    await provider.stop();
  }
});

// A service that needs the login: the office ticks it in the console; a citizen who is not
// logged in gets no form, and a booking posted anyway is refused with nothing booked; logged
// in, the booking carries the name and fiscal code the provider vouched for, whatever the form
// says.
test('a service that requires the SPID/CIE login books only the person the provider vouched for; staff log in through the same provider', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const provider = await startProvider(`${base}/accedi/ritorno`);
  const args = ['--listen', `127.0.0.1:${port}`, '--rate-limit-burst', '20',
    ...oidc(provider.issuer)];
  let server = await startServer(args);
  await server.stop({ keep: true });
  const provisional = createAdmin(server.dir);
  server = await startServer(args, server.dir);
  const browser = await launchBrowser();
  try {
    const office = await browser.newContext({ locale: 'it-IT' });
    office.setDefaultTimeout(15000);
    const admin = await office.newPage();
    await firstLogin(admin, base, 'admin@comune.esempio.it', provisional);
    await admin.goto(`${base}/ufficio/config/servizi/4`);
    await admin.locator('label[for=accesso]').click();
    await admin.getByRole('button', { name: 'Salva' }).click();
    await admin.goto(`${base}/ufficio/config/servizi/4`);
    assert.ok(await admin.locator('#accesso').isChecked());

    const page = await phonePage(browser);
    const slots = await (await fetch(`${base}/api/servizi/4/orari`)).json();
    const slot = slots.find((s) => s.modes.includes('video'));
    await page.goto(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    assert.match(await page.locator('#login-needed').textContent(), /Per prenotare questo servizio entra con SPID o CIE/);
    assert.equal(await page.getByRole('button', { name: 'Richiedi appuntamento' }).count(), 0);
    assert.deepEqual(await violations(page), []);

    // Posted anyway, without the login: refused, nothing booked, no email.
    const csrf = (await page.context().cookies()).find((c) => c.name === 'csrf').value;
    const posted = await page.request.post(`${base}/servizi/4/prenota`, {
      form: { csrf, start: String(slot.start_ts), mode: 'video', given_name: 'Falso', family_name: 'Nome', email: 'falso@example.it', reason: 'x', consent: 'on' },
      maxRedirects: 0,
    });
    assert.equal(posted.status(), 403);
    assert.doesNotMatch(await (await fetch(`${server.admin}/posta`)).text(), /falso@example\.it/);

    // Logged in: the provider's person is booked, whatever the form says.
    await logIn(page, 'mario');
    await page.waitForURL(`${base}/servizi/4/prenota?inizio=${slot.start_ts}`);
    await page.locator('label[for=mode-video]').click();
    await page.getByRole('textbox', { name: 'Nome', exact: true }).fill('Falso');
    await page.getByRole('textbox', { name: 'Codice fiscale' }).fill('RSSGLI12C45A192Q');
    await page.getByRole('textbox', { name: "Motivo dell'appuntamento" }).fill('Pratica CILA');
    await page.locator('label[for=consent]').click();
    await powDone(page);
    await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
    await page.waitForURL(/\/prenotazione\//);
    await page.goto(`${base}/i-miei-appuntamenti`);
    const mine = await page.locator('#mine').textContent();
    assert.match(mine, /Mario Rossi/);
    assert.doesNotMatch(mine, /Falso/);

    // Staff through the same provider: the account with the vouched email enters the console;
    // a person without an account is refused and gets no session.
    const staff = await browser.newContext({ locale: 'it-IT' });
    staff.setDefaultTimeout(15000);
    const desk = await staff.newPage();
    await desk.goto(`${base}/ufficio/accesso`);
    await logIn(desk, 'anna');
    await desk.waitForURL(`${base}/ufficio`);
    assert.match(await desk.locator('body').textContent(), /Anna Admin/);
    const stranger = await (await browser.newContext({ locale: 'it-IT' })).newPage();
    await stranger.goto(`${base}/ufficio/accesso`);
    await stranger.getByRole('link', { name: 'Entra con SPID o CIE' }).click();
    await stranger.getByLabel('Utente').fill('mario');
    const [refused] = await Promise.all([
      stranger.waitForResponse((r) => r.url().startsWith(`${base}/accedi/ritorno`)),
      stranger.getByRole('button', { name: 'Entra' }).click(),
    ]);
    assert.equal(refused.status(), 403);
    await stranger.getByText(/Nessun account dell'ufficio ha l'email verificata da SPID o CIE/).waitFor();
    const console = await stranger.request.get(`${base}/ufficio`, { maxRedirects: 0 });
    assert.equal(console.status(), 303);
  } finally {
    await browser.close();
    await server.stop();
    await provider.stop();
  }
});
