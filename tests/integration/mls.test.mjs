// MLS channels through hisoka's signaling (docs/protocol.md §6.5): ts-mls members
// (client/mls.js) over real WebSockets reach one group through the server's delivery
// service; mixing MLS and other E2EE in one channel is refused with the close reason;
// key messages of the other scheme are dropped and counted in either kind of channel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { MlsMember, T, encodeEnvelope } from '../../client/mls.js';
import { expectClose, freshChannel, join, open, sleep, stats, wrapped } from '../lib/abuse.mjs';
import { MLS, agree, lastEpoch, mlsJoin as mlsJoinAt } from '../lib/mls-node.mjs';
import { describeOffer, fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer({ e2ee: true, log_level: 'info' }); });
after(async () => { await server?.stop(); });

const mlsJoin = (channel, options) => mlsJoinAt(server, channel, options);
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

test('a commit race through the server: exactly one commit wins, the others recover', async () => {
  const ch = freshChannel('mls-race');
  // No delays: every member commits at once for each change.
  const eager = { commitDelayMs: 0, rankDelayMs: 0 };
  const a = await mlsJoin(ch, eager);
  const b = await mlsJoin(ch, eager);
  const c = await mlsJoin(ch, eager);
  await agree([a, b, c]);
  const before0 = await stats(server);
  const d = await mlsJoin(ch, eager);
  await agree([a, b, c, d]);
  const now = await stats(server);
  const accepted = now.mls.commits_accepted - before0.mls.commits_accepted;
  const refused = now.mls.commits_refused - before0.mls.commits_refused;
  console.log(`# a join with three eager committers: ${accepted} accepted, ${refused} refused`);
  assert.equal(accepted, 1, 'one commit for the epoch');
  assert.ok(refused >= 1, 'the others were refused');
  for (const m of [a, b, c, d]) m.client.close();
});

test('a silent committer does not stall the group: after the commit deadline the group is replaced', async () => {
  const ch = freshChannel('mls-silent');
  const a = await mlsJoin(ch);
  await agree([a]);
  a.silent = true; // a is the only one who could commit B's Add
  const t0 = Date.now();
  const b = await mlsJoin(ch);
  // The DS's 2 s deadline (its channel timer) gives B a new group of its own.
  await agree([b], 6000);
  const ms = Date.now() - t0;
  console.log(`# B in a working group ${ms} ms after joining behind a silent member`);
  assert.ok(ms >= 1900, 'not before the commit deadline');
  const s = await stats(server);
  assert.ok(s.mls.resets >= 1, 'counted as a reset');
  // A never answers the REJOIN: closed for want of a key package (10 s).
  await expectClose(a.client, 4408, /^MLS-NO-KEY-PACKAGE/, 15000);
  b.client.close();
});

// A joiner whose key package the DS took, before it answered (hk_channel_offer_early):
// connect, offer, KEY_PACKAGE; its answer is sent by the test.
async function earlyJoiner(ch) {
  const client = await open(server.url, { role: 'sendrecv', channel_id: ch, ...MLS });
  const offer = await client.next('offer');
  const mls = new MlsMember({ connectionId: offer.connection_id, send: (b) => client.sendBinary(Buffer.from(b)) });
  client.ws.on('message', (data, isBinary) => { if (isBinary) mls.receive(new Uint8Array(data)); });
  await mls.start();
  return { client, id: offer.connection_id, offer };
}

// The sections of an offer that carry publisher id's tracks: {kind: {port, mid, direction, ssrcs}}.
const tracksOf = (sdp, id) => Object.fromEntries(describeOffer(sdp)
  .filter((s) => s.msid?.startsWith(`${id} `)).map((s) => [s.kind, s]));
const notifiedAbout = (m, id) => m.client.messages.filter((x) => x.type === 'notify' && x.connection_id === id)
  .map((x) => x.event_type);

test('a joiner\'s tracks reach the members with its Add, before its answer; what it did not answer, or a leave before answering, takes them back', async () => {
  const ch = freshChannel('mls-early');
  const a = await mlsJoin(ch);
  await agree([a]);

  // B sent its key package and has not answered: A is offered its audio and video now.
  const b = await earlyJoiner(ch);
  const early = await a.client.next('re-offer');
  const offered = tracksOf(early.sdp, b.id);
  assert.deepEqual(Object.keys(offered).sort(), ['audio', 'video'], early.sdp);
  for (const s of Object.values(offered)) {
    assert.equal(s.direction, 'sendonly');
    assert.equal(s.ssrcs.length, s.kind === 'video' ? 2 : 1);
    assert.match(s.msid, new RegExp(`^${b.id} ${s.kind}-${b.id}$`), 'a track id unique in the channel');
  }
  assert.deepEqual(notifiedAbout(a, b.id), [], 'no notify before its answer');
  a.client.send({ type: 're-answer', sdp: fakeAnswer(early.sdp) });

  // B answers with audio only: A gets connection.created, a re-offer that takes back both
  // early tracks, and then one with B's audio as answered.
  const answer = fakeAnswer(b.offer.sdp).split(/(?=m=)/).map((part) => (!part.startsWith('m=video') ? part
    : part.replace('a=sendonly', 'a=inactive').split('\r\n').filter((l) => !/^a=(ssrc|msid)/.test(l)).join('\r\n'))).join('');
  b.client.send({ type: 'answer', sdp: answer });
  await b.client.nextNotify('connection.created');
  const created = await a.client.nextNotify('connection.created');
  assert.equal(created.connection_id, b.id);
  const back = await a.client.next('re-offer');
  for (const s of Object.values(offered)) {
    assert.equal(describeOffer(back.sdp).find((x) => x.mid === s.mid).port, 0, `B's early ${s.kind} is taken back: ${back.sdp}`);
  }
  a.client.send({ type: 're-answer', sdp: fakeAnswer(back.sdp) });
  const again = await a.client.next('re-offer');
  const now = tracksOf(again.sdp, b.id);
  assert.deepEqual(Object.keys(now), ['audio'], 'B\'s audio only, as answered');
  assert.notEqual(now.audio.port, 0);
  assert.notEqual(now.audio.mid, offered.audio.mid);
  a.client.send({ type: 're-answer', sdp: fakeAnswer(again.sdp) });

  // C leaves before answering: its tracks are taken back, and nobody was told of it.
  const c = await earlyJoiner(ch);
  const cOffer = await a.client.next('re-offer');
  const cTracks = tracksOf(cOffer.sdp, c.id);
  assert.deepEqual(Object.keys(cTracks).sort(), ['audio', 'video']);
  a.client.send({ type: 're-answer', sdp: fakeAnswer(cOffer.sdp) });
  c.client.close();
  const gone = await a.client.next('re-offer');
  for (const s of Object.values(cTracks)) {
    assert.equal(describeOffer(gone.sdp).find((x) => x.mid === s.mid).port, 0, `C's ${s.kind} is taken back`);
  }
  assert.deepEqual(notifiedAbout(a, c.id), [], 'C was never announced');
  a.client.close();
  b.client.close();
});
