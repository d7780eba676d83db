// The camera and microphone test (/prova-video) in headless Chromium, on a 360 px phone: the
// fake camera is shown with its size, the fake microphone's tone moves the level meter, the
// page says in words what works (while "Termina la prova" stays put), and ending the test
// turns both off. A browser without WebRTC and an app's built-in browser are told what to do
// instead, with no button that cannot work.
// The page passes axe-core's WCAG 2.1 AA rules while the test runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, violations } from './helpers.mjs';

test('the camera and microphone test shows the camera, a moving level meter, and what a browser that cannot call should do', async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'it-IT' });
    // The list of devices comes half a second after the camera, as on a slow phone.
    await ctx.addInitScript(() => {
      const list = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
      navigator.mediaDevices.enumerateDevices = () => new Promise((r) => setTimeout(r, 500)).then(list);
    });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    await page.goto(`${server.base}/prova-video`);
    assert.equal(await page.locator('h1').textContent(), 'Prova fotocamera e microfono');
    await page.getByRole('button', { name: 'Avvia la prova' }).click();
    const stop = page.getByRole('button', { name: 'Termina la prova' });
    await stop.waitFor();
    const at = await stop.boundingBox();
    await page.locator('#check-results li', { hasText: /Fotocamera: funziona \(\d+×\d+\)/ }).waitFor();
    await page.locator('#check-results li', { hasText: 'Microfono: funziona' }).waitFor();
    // The fake microphone beeps: the meter moves and the page says the voice is heard.
    await page.locator('#check-heard').waitFor();
    // The camera and microphone to choose from.
    await page.getByRole('combobox', { name: 'Fotocamera' }).getByRole('option', { name: 'fake_device_0' }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Microfono' }).waitFor();
    // "Termina la prova" stayed where it was while the results, the lists and the voice heard
    // came in: a button that moves is tapped wrong.
    assert.deepEqual(await stop.boundingBox(), at, 'the button stayed where it was');
    await page.waitForFunction(() => document.getElementById('check-level').value > 5);
    const playing = await page.evaluate(() => {
      const v = document.getElementById('check-video');
      return v.videoWidth > 0 && v.srcObject.getTracks().every((t) => t.readyState === 'live');
    });
    assert.ok(playing, 'the preview plays');
    assert.deepEqual(await violations(page), []);
    await page.getByRole('button', { name: 'Termina la prova' }).click();
    await page.locator('#check-ended').waitFor();
    assert.ok(await page.evaluate(() => document.getElementById('check-video').srcObject.getTracks().every((t) => t.readyState === 'ended')));

    // A browser without WebRTC (an old Safari): told so, no start button.
    const old = await browser.newContext({ locale: 'it-IT' });
    await old.addInitScript(() => { delete window.RTCPeerConnection; });
    const oldPage = await old.newPage();
    await oldPage.goto(`${server.base}/prova-video`);
    assert.match(await oldPage.locator('#check-unsupported').textContent(), /non può fare videochiamate/);
    assert.equal(await oldPage.getByRole('button', { name: 'Avvia la prova' }).isVisible(), false);

    // An app's built-in browser (Instagram's): told to open the link in the phone's browser.
    const inApp = await browser.newContext({ locale: 'en-GB', userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8; wv) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36 Instagram 330.0.0.0' });
    const inAppPage = await inApp.newPage();
    await inAppPage.goto(`${server.base}/lingua/en`);
    await inAppPage.goto(`${server.base}/prova-video`);
    assert.match(await inAppPage.locator('#check-unsupported').textContent(), /built-in browser of an app/);
  } finally {
    await browser.close();
    await server.stop();
  }
});
