// Books and confirms a video appointment through the pages and the local mailbox.
import assert from 'node:assert/strict';
import { powDone } from './helpers.mjs';

// `server` is what `startServer` returns (the mailbox is read on its administration listener);
// `pick(slot, slots)` chooses among the free video slots of the service (`service`, by default
// Edilizia privata, 4) by what the test needs, the first one by default; `base` is where the
// citizen books (a proxy in front of the server, or the server itself).
export async function bookVideo(page, server, pick = () => true, { base = server.base, service = 4 } = {}) {
  const mailbox = server.admin;
  const slots = await (await fetch(`${base}/api/servizi/${service}/orari`)).json();
  const slot = slots.find((s) => s.modes.includes('video') && pick(s, slots));
  assert.ok(slot, `a free video slot as the test needs, among ${JSON.stringify(slots.slice(0, 5))}`);
  await page.goto(`${base}/servizi/${service}/prenota?inizio=${slot.start_ts}`);
  await page.locator('label[for=mode-video]').click();
  await page.getByRole('textbox', { name: 'Nome', exact: true }).fill('Maria');
  await page.getByRole('textbox', { name: 'Cognome', exact: true }).fill('Rossi');
  await page.getByRole('textbox', { name: 'Email', exact: true }).fill('maria.rossi@example.it');
  await page.getByRole('textbox', { name: "Motivo dell'appuntamento" }).fill('Pratica CILA');
  await page.locator('label[for=consent]').click();
  await powDone(page);
  await page.getByRole('button', { name: 'Richiedi appuntamento' }).click();
  await page.goto(`${mailbox}/posta`);
  // The newest first: the email of this booking.
  await page.getByRole('link', { name: /Conferma la tua prenotazione/ }).first().click();
  const link = (await page.locator('#mail-text').textContent()).match(/https?:\/\/\S+\/conferma\/\S+/)[0];
  assert.ok(link.startsWith(`${base}/`), `the email's link ${link} is on the site's public address ${base}`);
  await page.goto(link);
  await page.getByRole('button', { name: 'Conferma la prenotazione' }).click();
  return { code: (await page.locator('.booking-code').first().textContent()).trim(), start: new Date(slot.start) };
}
