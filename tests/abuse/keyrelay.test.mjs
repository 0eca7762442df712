// docs/threats.md 12 (E2EE key relay) and the relay itself: binary key messages between
// members of an e2ee channel arrive byte-identical at the named destination only;
// every malformed, forged or misrouted one is dropped, counted in /stats, and the
// relay keeps working for valid messages afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertServes, cipher, expectClose, expectNoBinary, freshChannel, join, keyMessage, leave, open,
  pattern, prekey, sleep, stats, wrapped,
} from '../lib/abuse.mjs';
import { startServer } from '../lib/server.mjs';

let server;
let a;
let b;
let c;
let d; // in channel k2
const K1 = freshChannel('k1');
const K2 = freshChannel('k2');

before(async () => {
  server = await startServer({ e2ee: true, max_key_messages_per_second: 100 });
  a = await join(server.url, K1, { e2ee: true });
  b = await join(server.url, K1, { e2ee: true });
  c = await join(server.url, K1, { e2ee: true });
  d = await join(server.url, K2, { e2ee: true });
  await a.client.nextNotify('connection.created');
  await a.client.nextNotify('connection.created');
  await b.client.nextNotify('connection.created');
});

after(async () => {
  for (const m of [a, b, c, d]) m?.client.close();
  await server?.stop();
});

// Sends buf from A to B and checks it arrives at B byte-identical, and at no one else.
async function relayed(buf, from = a, to = b) {
  const before = await stats(server);
  from.client.sendBinary(buf);
  const got = await to.client.nextBinary(3000);
  assert.deepEqual(got, buf);
  await expectNoBinary([a, b, c, d], 100);
  const now = await stats(server);
  assert.equal(now.key_messages_relayed, before.key_messages_relayed + 1);
  assert.equal(now.key_messages_dropped, before.key_messages_dropped);
}

// Sends buf from A; checks it is dropped and counted, that nothing arrives anywhere
// within 300 ms, and that a valid message afterwards still arrives.
async function dropped(buf, from = a) {
  const before = await stats(server);
  from.client.sendBinary(buf);
  await expectNoBinary([a, b, c, d], 300);
  const now = await stats(server);
  assert.equal(now.key_messages_dropped, before.key_messages_dropped + 1, 'counted as dropped');
  assert.equal(now.key_messages_relayed, before.key_messages_relayed, 'not relayed');
  for (const m of [a, b, c, d]) assert.equal(m.client.closeCode, undefined, 'still connected');
  await relayed(prekey(a.id, b.id, 99));
}

test('key relay: type 0 (PreKey, 120 bytes) arrives byte-identical at its destination only', async () => {
  const msg = prekey(a.id, b.id, 1);
  assert.equal(msg.length, 120);
  await relayed(msg);
  // And the other way round, and to C.
  await relayed(prekey(b.id, a.id, 2), b, a);
  await relayed(prekey(a.id, c.id, 3), a, c);
});

test('key relay: type 1 (Cipher) arrives byte-identical', async () => {
  await relayed(cipher(a.id, b.id, 16, 4));
  await relayed(cipher(a.id, b.id, 1, 5));
  await relayed(cipher(a.id, b.id, 1000, 6));
});

test('key relay: type 2 (wrapped sender key) arrives byte-identical', async () => {
  await relayed(wrapped(a.id, b.id, 48, 7));
  await relayed(wrapped(a.id, b.id, 1, 8));
  await relayed(wrapped(a.id, b.id, 1024, 9));
});

test('abuse 12: unknown type', async () => {
  for (const type of [3, 0x7f, 0xff]) {
    await dropped(keyMessage({ type, src: a.id, dst: b.id, body: pattern(64) }));
  }
});

test('abuse 12: reserved byte not zero', async () => {
  await dropped(keyMessage({ type: 0, reserved: 1, src: a.id, dst: b.id, body: pattern(64) }));
});

test('abuse 12: wrong length for type 0', async () => {
  for (const n of [0, 63, 65, 200]) {
    await dropped(keyMessage({ type: 0, src: a.id, dst: b.id, body: pattern(n) }));
  }
  // Type 0 with a ciphertext length.
  await dropped(keyMessage({ type: 0, ctLen: 16, src: a.id, dst: b.id, body: pattern(64) }));
  // Shorter than the header and ids.
  for (const n of [0, 1, 4, 55]) await dropped(prekey(a.id, b.id).subarray(0, n));
});

test('abuse 12: CiphertextLength disagreeing with the message', async () => {
  // Type 1: header says 16, 20 bytes follow; header says 20, 16 follow; header says 0.
  await dropped(keyMessage({ type: 1, ctLen: 16, src: a.id, dst: b.id, body: pattern(40 + 20) }));
  await dropped(keyMessage({ type: 1, ctLen: 20, src: a.id, dst: b.id, body: pattern(40 + 16) }));
  await dropped(keyMessage({ type: 1, ctLen: 0, src: a.id, dst: b.id, body: pattern(40) }));
  await dropped(keyMessage({ type: 1, ctLen: 0xffff, src: a.id, dst: b.id, body: pattern(40 + 16) }));
  // Type 2: disagreeing, zero, over 1024.
  await dropped(keyMessage({ type: 2, ctLen: 48, src: a.id, dst: b.id, body: pattern(47) }));
  await dropped(keyMessage({ type: 2, ctLen: 0, src: a.id, dst: b.id }));
  await dropped(keyMessage({ type: 2, ctLen: 1025, src: a.id, dst: b.id, body: pattern(1025) }));
  // Longer than any key message (2 KiB) though under max_message_size.
  await dropped(keyMessage({ type: 1, ctLen: 4000, src: a.id, dst: b.id, body: pattern(4040) }));
});

test('abuse 12: a source id that is not the sender\'s own', async () => {
  await dropped(prekey(b.id, b.id)); // forged: B's id, to B
  await dropped(prekey(c.id, b.id)); // forged: C's id
  await dropped(prekey(d.id, b.id)); // a member of another channel
  await dropped(prekey('0'.repeat(26), b.id)); // nobody
  await dropped(prekey(a.id.toLowerCase(), b.id)); // not the exact id
  const bad = Buffer.from(prekey(a.id, b.id));
  bad[4 + 25] = 0x00; // a NUL in the id
  await dropped(bad);
});

test('abuse 12: a destination in another channel', async () => {
  await dropped(prekey(a.id, d.id));
  assert.equal(d.client.binary.length, 0);
  // And from the other channel into this one.
  await dropped(prekey(d.id, b.id), d);
});

test('abuse 12: a destination that is gone', async () => {
  const e = await join(server.url, K1, { e2ee: true });
  for (const m of [a, b, c]) {
    assert.equal((await m.client.nextNotify('connection.created')).connection_id, e.id);
  }
  await relayed(prekey(a.id, e.id, 10), a, e);
  await leave(e);
  for (const m of [a, b, c]) {
    assert.equal((await m.client.nextNotify('connection.destroyed')).connection_id, e.id);
  }
  await dropped(prekey(a.id, e.id));
  // Unknown and malformed destinations.
  await dropped(prekey(a.id, '7ZZZZZZZZZZZZZZZZZZZZZZZZZ'));
  await dropped(prekey(a.id, 'not-an-id-at-all-not-an-id'));
});

test('abuse 12: a destination that is the sender itself', async () => {
  await dropped(prekey(a.id, a.id));
  assert.equal(a.client.binary.length, 0);
});

test('abuse 12: a flood of 1,000 key messages in one burst', async () => {
  await sleep(1100); // a fresh rate window
  const before = await stats(server);
  const sent = [];
  for (let i = 0; i < 1000; i++) {
    const msg = keyMessage({ type: 0, src: a.id, dst: b.id, body: pattern(64, 1000 + i) });
    sent.push(msg);
    a.client.ws.send(msg, { binary: true });
  }
  // Wait until the server has counted all 1,000 (bounded).
  let now;
  for (let i = 0; i < 50; i++) {
    now = await stats(server);
    const counted = now.key_messages_relayed - before.key_messages_relayed
      + now.key_messages_dropped - before.key_messages_dropped;
    if (counted >= 1000) break;
    await sleep(100);
  }
  const relayedCount = now.key_messages_relayed - before.key_messages_relayed;
  const droppedCount = now.key_messages_dropped - before.key_messages_dropped;
  assert.equal(relayedCount + droppedCount, 1000);
  assert.ok(relayedCount >= 50 && relayedCount <= 100, `relayed ${relayedCount}`);
  assert.ok(droppedCount >= 900, `dropped ${droppedCount}`);
  // What B got is exactly the relayed ones, in order, byte-identical.
  for (let i = 0; i < relayedCount; i++) {
    const got = await b.client.nextBinary(3000);
    assert.deepEqual(got, sent[i]);
  }
  await expectNoBinary([a, b, c, d], 300);
  for (const m of [a, b, c, d]) assert.equal(m.client.closeCode, undefined, 'still connected');
  // The next second, valid messages flow again.
  await sleep(1100);
  await relayed(prekey(a.id, b.id, 11));
  await assertServes(server);
});

test('abuse 12: a key message in a plain channel is dropped', async () => {
  const plain = freshChannel('plain');
  const p = await join(server.url, plain);
  const q = await join(server.url, plain);
  await p.client.nextNotify('connection.created');
  const before = await stats(server);
  p.client.sendBinary(prekey(p.id, q.id));
  q.client.sendBinary(wrapped(q.id, p.id));
  await expectNoBinary([p, q, a, b, c, d], 300);
  const now = await stats(server);
  assert.equal(now.key_messages_dropped, before.key_messages_dropped + 2);
  assert.equal(now.key_messages_relayed, before.key_messages_relayed);
  assert.equal(p.client.closeCode, undefined);
  await assertServes(server, { channel: plain, others: [p, q] });
  await leave(p);
  await leave(q);
  await relayed(prekey(a.id, b.id, 12));
});

test('abuse 12: a key message to a member that has not answered yet is relayed', async () => {
  // A member exists from its offer on: keys may reach it before its answer.
  const e = await open(server.url, { role: 'sendrecv', channel_id: K1, e2ee: true });
  const offer = await e.next('offer');
  await relayed(prekey(a.id, offer.connection_id, 13), a, { client: e });
  e.close();
  await e.waitClose();
});

test('abuse 12: binary before connect closes with 4400', async () => {
  const e = await open(server.url);
  e.sendBinary(prekey(a.id, b.id));
  await expectClose(e, 4400, /binary message before the offer/);
  await expectNoBinary([a, b, c, d], 100);
  await relayed(prekey(a.id, b.id, 14));
  await assertServes(server, { channel: K2, others: [d], extra: { e2ee: true } });
});
