// docs/threats.md 13: a subscriber that stops reading its WebSocket is cut off once its send
// queue passes the limit, and the others go on.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { assertServes, cipher, join, sleep, withServer } from '../lib/abuse.mjs';
import { scrape } from '../lib/metrics.mjs';

test('abuse 13: a subscriber that stops reading its WebSocket is disconnected', async () => {
  await withServer({ e2ee: true, max_key_messages_per_second: 100000 }, async (server) => {
    const a = await join(server.url, 'slow', { e2ee: true });
    const b = await join(server.url, 'slow', { e2ee: true });
    await a.client.nextNotify('connection.created');
    const before = await scrape(server);
    // B stops reading: its socket is paused, so the kernel buffers fill and then
    // hisoka's queue for it grows.
    b.client.ws._socket.pause();
    const msg = cipher(a.id, b.id, 1000);
    for (let i = 0; i < 20000; i++) {
      a.client.sendBinary(msg);
      if (i % 1000 === 999) await sleep(20);
    }
    let after;
    for (let i = 0; i < 100; i++) {
      after = await scrape(server);
      if (after.samples.get('hisoka_slow_reader_disconnects_total')
        > before.samples.get('hisoka_slow_reader_disconnects_total')) break;
      await sleep(100);
    }
    assert.equal(after.samples.get('hisoka_slow_reader_disconnects_total')
      - before.samples.get('hisoka_slow_reader_disconnects_total'), 1, 'B was cut off');
    // A is told that B is gone and the server still serves A's channel.
    const destroyed = await a.client.nextNotify('connection.destroyed', 10000);
    assert.equal(destroyed.connection_id, b.id);
    await assertServes(server, { channel: 'slow', others: [a], extra: { e2ee: true } });
    b.client.ws.terminate();
    a.client.close();
  });
});
