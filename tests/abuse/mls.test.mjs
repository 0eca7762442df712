// Hostile binary MLS messages (docs/protocol.md §6.2-6.5, docs/threats.md 12): garbage
// envelopes, oversize messages, floods and a member that never sends its key package.
// Each is dropped or refused and counted; the sender is closed with the documented
// reason where the DS says so; and the group of well-behaved ts-mls members in the same
// channel still moves on: a new member joins and everyone agrees on the next epoch.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import { T, encodeEnvelope } from '../../client/mls.js';
import { expectClose, freshChannel, join, sleep, stats } from '../lib/abuse.mjs';
import { MLS, agree, mlsJoin } from '../lib/mls-node.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer({ e2ee: true, log_level: 'info' }); });
after(async () => { await server?.stop(); });

// A group of two that must survive, plus the attacker (a plain signaling member).
async function setting() {
  const channel = freshChannel('mls-abuse');
  const a = await mlsJoin(server, channel);
  const b = await mlsJoin(server, channel);
  await agree([a, b]);
  const attacker = await join(server.url, channel, MLS);
  return { channel, a, b, attacker };
}

// The group still works: a new member joins, all agree; then everyone leaves.
async function groupStillWorks({ channel, a, b, attacker }) {
  assert.ok(server.alive(), 'hisoka is still running');
  const c = await mlsJoin(server, channel);
  await agree([a, b, c]);
  for (const m of [a, b, c, attacker]) m.client.close();
}

// An envelope with a valid header and a random body of n bytes.
const garbage = (type, n) => Buffer.from(encodeEnvelope(type, 0n, crypto.randomBytes(n)));

test('garbage envelopes: counted as malformed, the sender is closed 4400 MLS-MALFORMED at the fifth', async () => {
  const s = await setting();
  const before0 = await stats(server);
  // Bad headers, lying lengths, random bodies, types clients never send.
  const inputs = [
    Buffer.from([0x10]),
    Buffer.from([0x1f, 0xff, 1, 2, 3]),
    Buffer.concat([garbage(T.KEY_PACKAGE, 64).subarray(0, 10), Buffer.from([0xff, 0xff, 0xff, 0xff])]),
    garbage(T.KEY_PACKAGE, 300),
    garbage(T.ANNOUNCE_COMMIT, 50),
  ];
  for (const buf of inputs) s.attacker.client.sendBinary(buf);
  await expectClose(s.attacker.client, 4400, /^MLS-MALFORMED/);
  const now = await stats(server);
  assert.equal(now.mls.malformed - before0.mls.malformed, 5);
  assert.equal(now.mls.closes - before0.mls.closes, 1);
  assert.equal(s.a.client.closeCode, undefined);
  await groupStillWorks(s);
});

test('oversize: over the DS limit is malformed, over max_message_size closes the socket', async () => {
  const s = await setting();
  const before0 = await stats(server);
  s.attacker.client.sendBinary(garbage(T.KEY_PACKAGE, 100 * 1024)); // over the DS's 64 KiB
  await sleep(300);
  const now = await stats(server);
  assert.equal(now.mls.malformed - before0.mls.malformed, 1);
  assert.equal(s.attacker.client.closeCode, undefined, 'one oversize message is not a close');
  s.attacker.client.sendBinary(garbage(T.KEY_PACKAGE, 300 * 1024)); // over max_message_size
  const closed = await s.attacker.client.waitClose();
  assert.notEqual(closed.code, 1000, `closed: ${closed.code} ${closed.reason}`);
  await groupStillWorks(s);
});

test('a flood: beyond 20 per second is dropped and counted, the sender stays', async () => {
  const s = await setting();
  const before0 = await stats(server);
  // A member without a key package sending commits: each is refused (stale), none is
  // malformed, so only the rate limit stops them.
  for (let i = 0; i < 200; i++) s.attacker.client.sendBinary(garbage(T.COMMIT, 64));
  await sleep(500);
  const now = await stats(server);
  const limited = now.mls.rate_limited - before0.mls.rate_limited;
  const refused = now.mls.commits_refused - before0.mls.commits_refused;
  console.log(`# 200 commits in a burst: ${refused} refused, ${limited} rate-limited`);
  assert.ok(refused <= 21, `at most 20 a second handled (${refused})`);
  assert.equal(refused + limited, 200);
  assert.equal(now.mls.messages_dropped - before0.mls.messages_dropped, limited);
  assert.equal(s.attacker.client.closeCode, undefined, 'still connected');
  await groupStillWorks(s);
});

test('a member that never sends its key package is closed 4408 MLS-NO-KEY-PACKAGE', async () => {
  const s = await setting();
  await expectClose(s.attacker.client, 4408, /^MLS-NO-KEY-PACKAGE/, 15000);
  await groupStillWorks(s);
});
