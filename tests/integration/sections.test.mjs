// m-sections over a long meeting: a subscriber stays while 1,000 publishers come and go.
// Rejected sections are recycled (new mid, same slot), so its offer stays bounded, and
// the next publisher still reaches it; rejected sections keep the transport attributes
// strict stacks need; a viewer whose last publisher left keeps a valid BUNDLE group.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer, sections } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

async function member(server, channel, role) {
  const c = await connectClient(server.url, { role, channel_id: channel });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, id: offer.connection_id, offer };
}

// Answers re-offers until one names (or no longer names) `publisher`; returns its SDP.
async function reofferUntil(viewer, test) {
  for (;;) {
    const m = await viewer.client.next('re-offer');
    viewer.client.send({ type: 're-answer', sdp: fakeAnswer(m.sdp) });
    if (test(m.sdp)) return m.sdp;
  }
}

test('1,000 publish-and-leave cycles: the offer stays bounded and the next publisher arrives', async () => {
  const server = await startServer({ log_level: 'warn' });
  try {
    const viewer = await member(server, 'long', 'recvonly');
    let largest = 0;
    let maxSections = 0;
    let afterLeave = '';
    for (let i = 0; i < 1000; i++) {
      const pub = await member(server, 'long', 'sendonly');
      const joined = await reofferUntil(viewer, (sdp) => sdp.includes(`a=msid:${pub.id} `));
      pub.client.close();
      const left = await reofferUntil(viewer, (sdp) => !sdp.includes(`a=msid:${pub.id} `));
      afterLeave = left;
      for (const sdp of [joined, left]) {
        largest = Math.max(largest, sdp.length);
        maxSections = Math.max(maxSections, sections(sdp).media.length);
        // Never an offer without a BUNDLE group.
        assert.match(sdp, /a=group:BUNDLE \S+/);
      }
    }
    console.log(`# 1,000 cycles: at most ${maxSections} m-sections, largest re-offer ${largest} bytes`);
    assert.ok(maxSections <= 4, `${maxSections} m-sections`);
    assert.ok(largest < 12000, `largest re-offer ${largest} bytes`);
    const last = await member(server, 'long', 'sendonly');
    const sdp = await reofferUntil(viewer, (s) => s.includes(`a=msid:${last.id} `));
    assert.ok(sdp.includes(`a=msid:${last.id} `), 'the 1,001st publisher reaches the viewer');
    // After a leave: one section rejected, one kept idle for the BUNDLE group; the
    // rejected one carries the transport attributes (aiortc refuses it otherwise).
    const rejected = sections(afterLeave).media.filter((l) => l[0].split(' ')[1] === '0');
    assert.ok(rejected.length >= 1, 'a rejected section after a leave');
    assert.ok(sections(afterLeave).media.some((l) => l.includes('a=inactive') && l[0].split(' ')[1] === '9'),
      'an idle section keeps the BUNDLE group');
    for (const lines of rejected) {
      for (const a of ['a=ice-ufrag:', 'a=ice-pwd:', 'a=fingerprint:', 'a=setup:', 'a=rtcp-mux']) {
        assert.ok(lines.some((l) => l.startsWith(a)), `rejected section lacks ${a}`);
      }
    }
    last.client.close();
    viewer.client.close();
  } finally {
    await server.stop();
  }
});
