// DTLS checks with a real browser: a certificate that does not match the fingerprint
// in the answer closes the connection with a reason (and a log line); others go on.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallMember, serverAndBrowser, waitFor } from '../lib/browser.mjs';

let server;
let browser;
serverAndBrowser({ log_level: 'info' }, (s, b) => { server = s; browser = b; });

test('a certificate that does not match the answer fingerprint closes the connection', async () => {
  const good = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'fp' });
  const page = await browser.context.newPage();
  await page.goto(`${server.apiUrl}/health`);
  await page.addScriptTag({ path: new URL('./sora-page.js', import.meta.url).pathname });
  const forgedId = await page.evaluate(async (url) => {
    window.hisokaTest.forgeFingerprint = true;
    return window.hisokaTest.join(url, { role: 'sendrecv', channel_id: 'fp' });
  }, server.url);
  const closed = await waitFor(() => page.evaluate(() => window.hisokaTest.state.closed), 10000);
  assert.ok(closed, 'the server closed the forged connection');
  assert.equal(closed.code, 4403);
  assert.match(closed.reason, /^DTLS-FAILED: .*fingerprint/);
  assert.match(server.log, new RegExp(`\\[${forgedId}\\] DTLS-FAILED: .*fingerprint`));
  // The good member is told, and still receives nothing from the forged one but stays up.
  const stats = await good.serverStats();
  assert.ok(stats.media.dtls_errors >= 1);
  assert.equal(stats.channels[0].connections.length, 1);
  await page.close();
  await good.leave();
});
