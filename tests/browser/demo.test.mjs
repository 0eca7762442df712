// The demo page (client/index.html at /demo/): two people join a channel from the form
// and each sees the other's video, safety number and E2EE status.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import { serverAndBrowser, waitFor } from '../lib/browser.mjs';

let server;
let browser;
serverAndBrowser({ log_level: 'info', e2ee: true }, (s, b) => { server = s; browser = b; });

async function openDemo(channel) {
  const page = await browser.context.newPage();
  await page.goto(`${server.apiUrl}/demo/`);
  await page.fill('#url', server.url);
  await page.fill('#channel', channel);
  await page.click('#joinButton');
  await page.waitForFunction(() => document.getElementById('selfId').textContent.length === 26);
  return page;
}

test('demo page: join, see the other person, safety numbers and E2EE status', async () => {
  const a = await openDemo('demo');
  const b = await openDemo('demo');
  const aId = await a.textContent('#selfId');
  const bId = await b.textContent('#selfId');
  // A's tile for B plays video and says it is decrypting.
  const ok = await waitFor(() => a.evaluate((id) => {
    const fig = document.getElementById(`m-${id}`);
    const video = fig && fig.querySelector('video');
    return !!(video && video.videoWidth > 0 && fig.querySelector('.e2ee').textContent.startsWith('decrypting'));
  }, bId), 15000);
  assert.ok(ok, 'A sees B decrypting');
  // The safety number A shows for B is the one B shows for itself.
  const shownByA = await a.textContent(`#m-${bId} .safety`);
  const shownByB = await b.textContent('#selfSafety');
  assert.match(shownByB, /^\d{5}( \d{5}){5}$/);
  assert.equal(shownByA, shownByB);
  const shot = new URL('../../build/demo.png', import.meta.url).pathname;
  fs.mkdirSync(new URL('../../build/', import.meta.url).pathname, { recursive: true });
  await a.screenshot({ path: shot }); // for a person to look at

  // Leave: B's tile disappears from A's page.
  await b.click('#leaveButton');
  assert.ok(await waitFor(() => a.evaluate((id) => !document.getElementById(`m-${id}`), bId), 5000),
    'the leaver disappears');
  assert.equal(aId.length, 26);
  await a.click('#leaveButton');
  await a.close();
  await b.close();
});
