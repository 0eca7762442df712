// Amplification through signaling_notify_metadata (docs/threats.md 19): metadata that
// re-serializes several times longer (1e-7 becomes 9.9999999999999995e-08), sent by 50
// sockets into one channel. It is relayed as the bytes the client sent, under a size cap
// per connection and per channel, in one list for a joiner; every later joiner stays
// connected and a member receives at most 1.5x what the attackers sent.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expectClose, freshChannel, join, open } from '../lib/abuse.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

// A metadata object of about `bytes` bytes of numbers that jansson would rewrite 5x longer.
function inflating(bytes) {
  return { n: Array.from({ length: Math.floor(bytes / 5) }, () => 1e-7) };
}

// JSON.stringify writes 1e-7 as "1e-7", the short form an attacker would send.
const connectBytes = (connect) => Buffer.byteLength(JSON.stringify({ type: 'connect', ...connect }));

test('abuse 19: 50 sockets of inflating metadata: no lockout, members get at most 1.5x', async () => {
  const server = await startServer({ max_connections_per_channel: 100 });
  try {
    const channel = freshChannel('meta');
    const member = await join(server.url, channel);
    let received = 0;
    member.client.ws.on('message', (data) => { received += data.length; });

    let sent = 0;
    let admitted = 0;
    let refused = 0;
    const attackers = [];
    for (let i = 0; i < 50; i++) {
      const connect = { role: 'recvonly', channel_id: channel,
        signaling_notify_metadata: inflating(7000) };
      sent += connectBytes(connect);
      const c = await open(server.url, connect);
      attackers.push(c);
      const offer = await c.next('offer').catch(() => null);
      if (offer) {
        c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
        admitted++;
      } else {
        const closed = await c.waitClose(5000);
        assert.equal(closed.code, 4429, `closed ${closed.code} ${closed.reason}`);
        assert.match(closed.reason, /max_channel_notify_metadata_size/);
        refused++;
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    console.log(`# 50 attackers: ${admitted} admitted, ${refused} refused by the channel cap; ` +
      `they sent ${sent} bytes, the member received ${received} (${(received / sent).toFixed(2)}x)`);
    assert.ok(admitted >= 20, `${admitted} admitted`);
    assert.ok(received <= 1.5 * sent, `member received ${received} for ${sent} sent`);

    // Later joiners stay connected and get the list once (data, no metadata_list).
    for (let i = 0; i < 3; i++) {
      const j = await join(server.url, channel);
      assert.ok(Array.isArray(j.created.data));
      assert.equal(j.created.metadata_list, undefined, 'one list only');
      assert.ok(j.created.data.length >= admitted);
      // The metadata arrives as sent: numbers in their short form.
      assert.deepEqual(j.created.data.find((d) => d.metadata?.n)?.metadata, inflating(7000));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(j.client.closeCode, undefined, 'the joiner is still connected');
      j.client.close();
    }
    assert.equal(member.client.closeCode, undefined, 'the member is still connected');
    for (const c of attackers) c.close();
    member.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 19: metadata over max_notify_metadata_size is refused with 4413', async () => {
  const server = await startServer({ max_notify_metadata_size: '1 KiB' });
  try {
    const channel = freshChannel('meta-cap');
    const member = await join(server.url, channel);
    const big = await open(server.url, { role: 'sendrecv', channel_id: channel,
      signaling_notify_metadata: { s: 'x'.repeat(1100) } });
    await expectClose(big, 4413, /METADATA-TOO-LARGE/);
    // Whitespace does not count: what is relayed is what is measured.
    const spaced = await open(server.url, null);
    spaced.ws.send(`{"type":"connect","role":"sendrecv","channel_id":"${channel}",` +
      `"signaling_notify_metadata": {"s": "${'y'.repeat(900)}"${' '.repeat(3000)}}}`);
    assert.equal((await spaced.next('offer')).channel_id, channel);
    spaced.close();
    assert.equal(member.client.closeCode, undefined);
    member.client.close();
  } finally {
    await server.stop();
  }
});
