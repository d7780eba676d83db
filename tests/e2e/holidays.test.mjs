// Recurring closures in headless Chromium: the server's clock in April 2031 (a year nothing was
// seeded for) and the town's patron saint on 16 April. The citizen's week of Easter Monday says
// the office is closed on Easter Monday and on the patron's day and offers no time on them; the
// administrator sees them listed on the calendar's page, opens the calendar on holidays, and the
// citizen's page then offers those days.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, createAdmin, firstLogin } from './helpers.mjs';

const ARGS = ['--start-clock-at', '2031-04-01T08:00:00Z', '--patron-saint', '16/04 San Patrizio'];
const CIE = 11; // the identity card, at the registry office (open Monday to Friday)

test('national holidays and the patron saint close the calendar every year, until the office opens it', async () => {
  let server = await startServer(ARGS);
  const dir = server.dir;
  await server.stop({ keep: true });
  const provisional = createAdmin(dir);
  server = await startServer(ARGS, dir);
  const browser = await launchBrowser();
  try {
    const citizen = await (await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' })).newPage();
    citizen.setDefaultTimeout(10000);
    const week = `${server.base}/servizi/${CIE}?settimana=2031-04-14`;
    await citizen.goto(week);
    const closed = await citizen.locator('#closed-days').textContent();
    assert.match(closed, /lunedì 14 aprile 2031 \(Lunedì dell'Angelo\)/);
    assert.match(closed, /mercoledì 16 aprile 2031 \(San Patrizio\)/);
    const days = await citizen.locator('section h3').allTextContents();
    assert.ok(days.some((d) => /15 aprile/.test(d)), `Tuesday is open: ${days}`);
    assert.ok(!days.some((d) => /14 aprile|16 aprile/.test(d)), `no time on the closed days: ${days}`);

    const page = await (await browser.newContext({ locale: 'it-IT' })).newPage();
    page.setDefaultTimeout(10000);
    await firstLogin(page, server.base, 'admin@comune.esempio.it', provisional);
    await page.goto(`${server.base}/ufficio/config`);
    // The registry office's calendar, through the office's page.
    await page.getByRole('link', { name: /^Anagrafe/ }).first().click();
    await page.locator('a[href^="/ufficio/config/calendari/"]').first().click();
    const listed = await page.locator('#holiday-days').textContent();
    assert.match(listed, /Lunedì dell'Angelo/);
    assert.match(listed, /San Patrizio/);
    assert.match(listed, /Festa della Liberazione/);
    await page.locator('label[for=cal-holidays]').click();
    await page.getByRole('button', { name: 'Salva', exact: true }).click();
    assert.match(await page.locator('#holidays').textContent(), /aperto anche nelle festività/);

    await citizen.goto(week);
    assert.equal(await citizen.locator('#closed-days').count(), 0);
    const open = await citizen.locator('section h3').allTextContents();
    assert.ok(open.some((d) => /14 aprile/.test(d)) && open.some((d) => /16 aprile/.test(d)), `${open}`);
  } finally {
    await browser.close();
    await server.stop();
  }
});
