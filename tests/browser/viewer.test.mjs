// A webinar's presenter changes: a recvonly viewer whose only publisher left (its offer
// then keeps one idle section, so the BUNDLE group stays valid) receives the next one.
// Its m-sections are recycled, so a long meeting does not grow its offer.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallMember, serverAndBrowser, waitFor } from '../lib/browser.mjs';

let server;
let browser;
serverAndBrowser({}, (s, b) => { server = s; browser = b; });

const decoded = async (m, from) => (await m.stats()).remote[from]?.framesDecoded || 0;

test('a recvonly viewer receives publisher 2 after publisher 1 left, and publisher 3 after that', async () => {
  const viewer = await CallMember.join(browser, server, { role: 'recvonly', channel_id: 'webinar' });
  for (let round = 1; round <= 3; round++) {
    const presenter = await CallMember.join(browser, server, { role: 'sendonly', channel_id: 'webinar' });
    assert.ok(await waitFor(async () => (await decoded(viewer, presenter.id)) > 10, 15000),
      `the viewer decodes presenter ${round}`);
    await presenter.leave();
    // The viewer's connection survives the leave re-offer (no "no bundle group").
    await new Promise((r) => setTimeout(r, 1500));
    const state = await viewer.page.evaluate(() => ({
      error: window.hisokaTest.state.error ?? null,
      closed: window.hisokaTest.state.closed ?? null,
      sections: (window.hisokaTest.state.pc.remoteDescription?.sdp.match(/^m=/gm) || []).length,
    }));
    assert.equal(state.error, null, `after presenter ${round} left: ${state.error}`);
    assert.equal(state.closed, null);
    assert.ok(state.sections <= 2, `${state.sections} m-sections after ${round} presenters`);
  }
  await viewer.leave();
});
