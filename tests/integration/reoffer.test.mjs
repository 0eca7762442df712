// A re-offer nobody answers: it is sent once more after reoffer_timeout, and after as long
// again the client is closed with a clear reason, instead of never hearing of later
// joiners. A client that answers the second copy stays, and changes made while its
// re-offer was out reach it in the next one.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

async function member(server, channel, role) {
  const c = await connectClient(server.url, { role, channel_id: channel });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, id: offer.connection_id };
}

test('an unanswered re-offer is resent once, then the client is closed with 4408', async () => {
  const server = await startServer({ reoffer_timeout: '1 s' });
  try {
    const viewer = await member(server, 'ro', 'recvonly');
    const pub = await member(server, 'ro', 'sendonly');
    const first = await viewer.client.next('re-offer');
    const t0 = Date.now();
    const again = await viewer.client.next('re-offer');
    assert.equal(again.sdp, first.sdp, 'the same re-offer again');
    assert.ok(Date.now() - t0 >= 800, `resent after ${Date.now() - t0} ms`);
    const closed = await viewer.client.waitClose(5000);
    assert.equal(closed.code, 4408);
    assert.match(closed.reason, /RE-OFFER-TIMEOUT/);
    pub.client.close();
  } finally {
    await server.stop();
  }
});

test('answering the resent re-offer keeps the client, and changes made meanwhile arrive', async () => {
  const server = await startServer({ reoffer_timeout: '1 s' });
  try {
    const viewer = await member(server, 'ro2', 'recvonly');
    const p1 = await member(server, 'ro2', 'sendonly');
    await viewer.client.next('re-offer');
    const p2 = await member(server, 'ro2', 'sendonly'); // while the re-offer is out
    const again = await viewer.client.next('re-offer');
    assert.ok(again.sdp.includes(`a=msid:${p1.id} `));
    assert.ok(!again.sdp.includes(`a=msid:${p2.id} `), 'the resend is the same offer');
    viewer.client.send({ type: 're-answer', sdp: fakeAnswer(again.sdp) });
    const next = await viewer.client.next('re-offer');
    assert.ok(next.sdp.includes(`a=msid:${p2.id} `), 'the change made meanwhile arrives');
    viewer.client.send({ type: 're-answer', sdp: fakeAnswer(next.sdp) });
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(viewer.client.closeCode, undefined, 'still connected');
    for (const c of [p1, p2, viewer]) c.client.close();
  } finally {
    await server.stop();
  }
});
