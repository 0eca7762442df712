// Three clients in one channel: every offer and re-offer is applied by headless
// Chromium (setRemoteDescription + createAnswer) and answered with Chromium's answer;
// notify sequences, counts and re-offers on join and leave are checked exactly.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BrowserPeer, launchChromium } from '../lib/browser.mjs';
import { connectClient } from '../lib/client.mjs';
import { describeOffer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

const ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function join(channel, role = 'sendrecv', extra = {}) {
  const client = await connectClient(server.url, { role, channel_id: channel, ...extra });
  const offer = await client.next('offer');
  const peer = await BrowserPeer.open(browser, server.apiUrl);
  const answer = await peer.answer(offer.sdp, role === 'recvonly' ? null : offer.mid);
  client.send({ type: 'answer', sdp: answer });
  return { client, offer, answer, peer, id: offer.connection_id };
}

// Applies the next re-offer with Chromium and sends the re-answer; returns its sections.
async function reanswer(member) {
  const msg = await member.client.next('re-offer');
  const sdp = await member.peer.answer(msg.sdp);
  member.client.send({ type: 're-answer', sdp });
  return describeOffer(msg.sdp);
}

function counts(n) {
  return {
    channel_connections: n, channel_sendrecv_connections: n,
    channel_sendonly_connections: 0, channel_recvonly_connections: 0,
  };
}

function checkNotify(msg, event, subject, n) {
  assert.equal(msg.event_type, event);
  assert.equal(msg.connection_id, subject.id);
  assert.equal(msg.client_id, subject.id);
  assert.equal(msg.channel_id, 'room');
  assert.equal(msg.role, 'sendrecv');
  assert.equal(msg.audio, true);
  assert.equal(msg.video, true);
  assert.equal(typeof msg.minutes, 'number');
  for (const [k, v] of Object.entries(counts(n))) assert.equal(msg[k], v, k);
}

test('three members: offers, notify sequences, re-offers on join and leave', async () => {
  const a = await join('room', 'sendrecv', { signaling_notify_metadata: { name: 'a' } });
  assert.match(a.id, ID);
  assert.equal(a.offer.channel_id, 'room');
  assert.equal(a.offer.client_id, a.id);
  assert.equal(a.offer.multistream, true);
  assert.deepEqual(a.offer.config, { iceServers: [], iceTransportPolicy: 'all' });
  assert.deepEqual(a.offer.mid, { audio: '0', video: '1' });
  assert.match(a.offer.sdp, /a=ice-lite\r\n/);
  assert.match(a.offer.sdp, /a=group:BUNDLE 0 1\r\n/);
  assert.match(a.offer.sdp, /a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r\n/);
  assert.match(a.offer.sdp, /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
  let created = await a.client.nextNotify('connection.created');
  checkNotify(created, 'connection.created', a, 1);
  assert.deepEqual(created.data, []);
  assert.deepEqual(created.metadata, { name: 'a' });

  // B joins: its offer already carries A's tracks.
  const b = await join('room', 'sendrecv', { signaling_notify_metadata: { name: 'b' } });
  const bOffer = describeOffer(b.offer.sdp);
  assert.equal(bOffer.length, 4);
  assert.deepEqual(bOffer.slice(2).map((s) => [s.kind, s.direction, s.msid.split(' ')[0]]),
    [['audio', 'sendonly', a.id], ['video', 'sendonly', a.id]]);
  // B receives A's video from a consumer of its own: its media SSRC (retransmissions use
  // it too) and an RTX SSRC paired with it (a=ssrc-group:FID) that carries only the
  // padding of bandwidth probes; neither is an SSRC A publishes.
  assert.equal(bOffer[3].ssrcs.length, 2, "the consumer's own SSRC and its RTX SSRC");
  assert.match(b.offer.sdp, new RegExp(`a=ssrc-group:FID ${bOffer[3].ssrcs[0]} ${bOffer[3].ssrcs[1]}\r\n`));
  for (const ssrc of bOffer[3].ssrcs) {
    assert.ok(!a.answer.includes(`a=ssrc:${ssrc} `), 'not one of the SSRCs A sends');
  }
  created = await b.client.nextNotify('connection.created');
  checkNotify(created, 'connection.created', b, 2);
  assert.deepEqual(created.data.map((d) => [d.connection_id, d.metadata]), [[a.id, { name: 'a' }]]);
  created = await a.client.nextNotify('connection.created');
  checkNotify(created, 'connection.created', b, 2);
  assert.deepEqual(created.metadata, { name: 'b' });
  let sections = await reanswer(a);
  assert.deepEqual(sections.map((s) => s.mid), ['0', '1', '2', '3']);
  assert.deepEqual(sections.slice(2).map((s) => s.msid.split(' ')[0]), [b.id, b.id]);

  // C joins: A and B both get a re-offer with C's tracks.
  const c = await join('room');
  assert.equal(describeOffer(c.offer.sdp).length, 6);
  created = await c.client.nextNotify('connection.created');
  checkNotify(created, 'connection.created', c, 3);
  assert.deepEqual(created.data.map((d) => d.connection_id), [a.id, b.id]);
  for (const m of [a, b]) {
    checkNotify(await m.client.nextNotify('connection.created'), 'connection.created', c, 3);
    sections = await reanswer(m);
    assert.deepEqual(sections.slice(-2).map((s) => [s.kind, s.msid.split(' ')[0]]),
      [['audio', c.id], ['video', c.id]]);
  }
  // Chromium saw a remote stream per publisher, named by its connection_id.
  await new Promise((r) => setTimeout(r, 200));
  const streams = new Set((await a.peer.trackEvents()).flatMap((e) => e.streams));
  assert.deepEqual([...streams].sort(), [b.id, c.id].sort());

  // C leaves: A and B are told, and C's sections are rejected (port 0) in a re-offer.
  c.client.close();
  await c.client.closed;
  for (const m of [a, b]) {
    const destroyed = await m.client.nextNotify('connection.destroyed');
    checkNotify(destroyed, 'connection.destroyed', c, 2);
    sections = await reanswer(m);
    const gone = sections.filter((s) => s.port === 0);
    assert.equal(gone.length, 2);
    assert.ok(gone.every((s) => !s.msid), 'closed sections carry no msid');
  }
  await new Promise((r) => setTimeout(r, 200));
  // Chromium stopped (and dropped) C's transceivers and ended C's tracks.
  assert.deepEqual((await a.peer.transceivers()).map((t) => t.mid), ['0', '1', '2', '3']);
  const tracks = await a.peer.trackEvents();
  assert.deepEqual(tracks.filter((t) => t.ended).map((t) => t.streams[0]), [c.id, c.id]);
  assert.deepEqual(tracks.filter((t) => !t.ended).map((t) => t.streams[0]), [b.id, b.id]);

  // Nothing else was queued: the notify sequence was exactly the one above.
  assert.deepEqual(a.client.messages.filter((m) => m.type !== 'ping'), []);
  assert.deepEqual(b.client.messages.filter((m) => m.type !== 'ping'), []);
  for (const m of [a, b]) { m.client.close(); await m.peer.close(); }
  await c.peer.close();
});

test('recvonly member joins an empty channel, then receives a publisher', async () => {
  const r = await join('watch', 'recvonly');
  assert.equal(r.offer.mid.audio, undefined);
  const initial = describeOffer(r.offer.sdp);
  assert.ok(initial.length >= 1 && initial.every((s) => s.direction === 'inactive' || s.port === 0));
  const created = await r.client.nextNotify('connection.created');
  assert.equal(created.channel_recvonly_connections, 1);
  const p = await join('watch', 'sendonly');
  const created2 = await r.client.nextNotify('connection.created');
  assert.equal(created2.connection_id, p.id);
  assert.equal(created2.channel_sendonly_connections, 1);
  assert.equal(created2.channel_connections, 2);
  const sections = await reanswer(r);
  const sending = sections.filter((s) => s.direction === 'sendonly');
  assert.deepEqual(sending.map((s) => [s.kind, s.msid.split(' ')[0]]),
    [['audio', p.id], ['video', p.id]]);
  await new Promise((r2) => setTimeout(r2, 200));
  const streams = new Set((await r.peer.trackEvents()).flatMap((e) => e.streams));
  assert.deepEqual([...streams], [p.id]);
  // The publisher receives nothing, so it gets no re-offer for the viewer.
  await new Promise((r2) => setTimeout(r2, 300));
  assert.equal(p.client.messages.filter((m) => m.type === 're-offer').length, 0);
  for (const m of [r, p]) { m.client.close(); await m.peer.close(); }
});
