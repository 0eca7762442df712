// The demo page (client/index.html at /demo/): two people join a channel from the form
// and each sees the other's video, safety number and E2EE status.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import { serverAndBrowser, waitFor } from '../lib/browser.mjs';

let server;
let browser;
serverAndBrowser({ log_level: 'info', e2ee: true }, (s, b) => { server = s; browser = b; });

async function openDemo(channel, { mls = false } = {}) {
  const page = await browser.context.newPage();
  await page.goto(`${server.apiUrl}/demo/`);
  await page.fill('#url', server.url);
  await page.fill('#channel', channel);
  if (mls) await page.check('#mlsMode');
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

// What an MLS page shows: {code, roster (ids), banners: [{text, warning}]}.
const groupView = (page) => page.evaluate(() => ({
  code: document.getElementById('mlsCode').textContent,
  roster: [...document.querySelectorAll('#mlsRoster li')].map((li) => li.dataset.id).sort(),
  banners: [...document.querySelectorAll('#banners .banner')]
    .map((b) => ({ text: b.querySelector('.text').textContent, warning: b.classList.contains('warning') })),
}));

test('demo page with MLS: roster and verification code from the group, a banner per change', async () => {
  const a = await openDemo('demo-mls', { mls: true });
  const b = await openDemo('demo-mls', { mls: true });
  const ids = [await a.textContent('#selfId'), await b.textContent('#selfId')];
  let views = [];
  const same = async (pages, members) => waitFor(async () => {
    views = await Promise.all(pages.map(groupView));
    return views.every((v) => /^\d{5}( \d{5}){5}$/.test(v.code) && v.code === views[0].code
      && JSON.stringify(v.roster) === JSON.stringify([...members].sort()));
  }, 15000, 200);
  assert.ok(await same([a, b], ids), `A and B show one group: ${JSON.stringify(views)}`);
  const before = views[0].code;
  const bannersBefore = views[0].banners.length;
  const c = await openDemo('demo-mls', { mls: true });
  const cId = await c.textContent('#selfId');
  assert.ok(await same([a, b, c], [...ids, cId]), `three show one group: ${JSON.stringify(views)}`);
  assert.notEqual(views[0].code, before, 'the code changed');
  for (const v of views.slice(0, 2)) {
    assert.equal(v.banners.length, bannersBefore + 1);
    assert.match(v.banners[0].text, new RegExp(`joined: ${cId} — verification code now ${views[0].code}`));
    assert.equal(v.banners[0].warning, false);
  }
  // A banner stays until it is dismissed.
  await a.click('#banners .banner button');
  assert.equal((await groupView(a)).banners.length, bannersBefore);
  await c.click('#leaveButton');
  assert.ok(await same([a, b], ids), 'C left the group');
  assert.match((await groupView(b)).banners[0].text, new RegExp(`left: ${cId}`));
  for (const p of [a, b]) await p.click('#leaveButton');
  for (const p of [a, b, c]) await p.close();
});
