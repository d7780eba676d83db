// The join link, opened 3 seconds before the room opens: the page counts down in Italian from
// the server's time and lets the citizen in by itself when it reaches zero, with no reload;
// the citizen waits until the operator enters, then both are told the call starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, binary } from './helpers.mjs';
import { bookVideo } from './booking-helpers.mjs';


test('the countdown reaches zero and the citizen enters without a reload', async () => {
  let server = await startServer();
  const dir = server.dir;
  const browser = await launchBrowser();
  try {
    const setup = await (await browser.newContext()).newPage();
    const { code, start } = await bookVideo(setup, server);
    await server.stop({ keep: true });

    // The room links, as the operator's command prints them.
    const out = execFileSync(binary(), ['--data-dir', dir, 'room-link', code], { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
    const citizenPath = new URL(out.match(/citizen:\s+(\S+)/)[1]).pathname;
    const operatorPath = new URL(out.match(/operator:\s+(\S+)/)[1]).pathname;

    // The server's clock: 3 seconds before the citizen's opening (5 minutes before the start).
    const at = new Date(start.getTime() - 5 * 60 * 1000 - 3000).toISOString();
    server = await startServer(['--start-clock-at', at], dir);
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
    await page.goto(`${server.base}${citizenPath}`);
    await page.locator('#state-countdown').waitFor({ state: 'visible' }).catch(async (e) => { console.log('PAGE:', await page.locator('main').innerText()); throw e; });
    const shown = await page.locator('#countdown').textContent();
    assert.match(shown, /^[1-3] second[oi]$/, `countdown shows "${shown}"`);
    assert.match(await page.locator('#state-countdown').textContent(), /Gentile Maria Rossi, non è ancora possibile collegarsi/);

    // At zero the page asks the server again and the room opens: no reload.
    await page.getByRole('button', { name: 'Entra nella stanza' }).waitFor({ state: 'visible', timeout: 8000 });
    assert.equal(navigations, 1, 'the page was not reloaded');
    await page.getByRole('button', { name: 'Entra nella stanza' }).click();
    assert.equal(await page.getByRole('textbox', { name: 'Il tuo nome e cognome' }).inputValue(), 'Maria Rossi');
    await page.getByRole('button', { name: 'Collegati' }).click();
    await page.getByText("Sei nella stanza. In attesa dell'operatore…").waitFor();

    // The operator enters: both are told.
    const op = await (await browser.newContext()).newPage();
    await op.goto(`${server.base}${operatorPath}`);
    await op.getByText('Maria Rossi è in attesa nella stanza.').waitFor();
    await op.getByRole('button', { name: 'Entra nella stanza' }).click();
    await op.getByRole('button', { name: 'Collegati' }).click();
    await op.getByText('Maria Rossi è entrato nella stanza').waitFor();
    await page.getByText('Edilizia privata è entrato nella stanza').waitFor();
  } finally {
    await browser.close();
    await server.stop({ keep: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
