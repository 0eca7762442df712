// MLS channels through hisoka's signaling (docs/protocol.md §6.5): ts-mls members
// (client/mls.js) over real WebSockets reach one group through the server's delivery
// service; mixing MLS and other E2EE in one channel is refused with the close reason;
// key messages of the other scheme are dropped and counted in either kind of channel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { T, encodeEnvelope } from '../../client/mls.js';
import { expectClose, freshChannel, join, open, sleep, stats, wrapped } from '../lib/abuse.mjs';
import { MLS, agree, lastEpoch, mlsJoin as mlsJoinAt } from '../lib/mls-node.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer({ e2ee: true, log_level: 'info' }); });
after(async () => { await server?.stop(); });

const mlsJoin = (channel) => mlsJoinAt(server, channel);
const last = lastEpoch;

test('three MLS members through signaling share one group; a leave is a new epoch', async () => {
  const ch = freshChannel('mls');
  const a = await mlsJoin(ch);
  const b = await mlsJoin(ch);
  const c = await mlsJoin(ch);
  await agree([a, b, c]);
  const epoch = last(a).epoch;
  const s = await stats(server);
  const live = s.channels.find((x) => x.channel_id === ch);
  assert.equal(live.e2ee_protocol, 'mls');
  assert.equal(live.mls_epoch, epoch);
  assert.ok(s.mls.commits_accepted >= 1 && s.mls.welcomes_sent >= 2, JSON.stringify(s.mls));
  c.client.close();
  await agree([a, b]);
  assert.equal(last(a).epoch, epoch + 1);
  a.client.close();
  b.client.close();
});

test('mixing MLS and other E2EE in one channel is refused with a reason', async () => {
  const ch1 = freshChannel('mls-first');
  const a = await mlsJoin(ch1);
  const round1 = await open(server.url, { role: 'sendrecv', channel_id: ch1, e2ee: true });
  await expectClose(round1, 4403, /^E2EE-MISMATCH: this channel uses MLS$/);
  const plain = await open(server.url, { role: 'sendrecv', channel_id: ch1 });
  await expectClose(plain, 4403, /^E2EE-MISMATCH/);

  const ch2 = freshChannel('round1-first');
  const b = await join(server.url, ch2, { e2ee: true });
  const late = await open(server.url, { role: 'sendrecv', channel_id: ch2, ...MLS });
  await expectClose(late, 4403, /^E2EE-MISMATCH: this channel does not use MLS$/);

  const noE2ee = await open(server.url, { role: 'sendrecv', channel_id: freshChannel(), e2ee_protocol: 'mls' });
  await expectClose(noE2ee, 4400, /^INVALID-E2EE-PROTOCOL/);
  const other = await open(server.url, { role: 'sendrecv', channel_id: freshChannel(), e2ee: true, e2ee_protocol: 'dave' });
  await expectClose(other, 4400, /^INVALID-E2EE-PROTOCOL/);
  a.client.close();
  b.client.close();
});

test('key messages of the other scheme are dropped and counted', async () => {
  const ch1 = freshChannel('mls-drop');
  const a = await mlsJoin(ch1);
  const b = await mlsJoin(ch1);
  await agree([a, b]);
  let before = await stats(server);
  a.client.sendBinary(wrapped(a.id, b.id, 16)); // round 1's type 2 in an MLS channel
  await sleep(200);
  let now = await stats(server);
  assert.equal(now.key_messages_dropped, before.key_messages_dropped + 1);
  assert.equal(now.key_messages_relayed, before.key_messages_relayed);

  const ch2 = freshChannel('round1-drop');
  const c = await join(server.url, ch2, { e2ee: true });
  before = now;
  c.client.sendBinary(Buffer.from(encodeEnvelope(T.KEY_PACKAGE, 0n, new Uint8Array(8))));
  await sleep(200);
  now = await stats(server);
  assert.equal(now.key_messages_dropped, before.key_messages_dropped + 1);
  assert.equal(now.mls.messages_in, before.mls.messages_in);
  assert.equal(c.client.closeCode, undefined, 'still connected');
  for (const m of [a, b, c]) m.client.close();
});
