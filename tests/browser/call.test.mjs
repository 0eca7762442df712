// Real calls through hisoka: headless Chromium members with fake camera and microphone
// see and hear each other; a fourth joins, one leaves.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallMember, serverAndBrowser, waitFor } from '../lib/browser.mjs';
import { delta, scrape } from '../lib/metrics.mjs';

let server;
let browser;
serverAndBrowser({ log_level: 'info' }, (s, b) => { server = s; browser = b; });

// True when `member` decodes video and receives audio from every id in `from`.
function receivesAll(stats, from, minFrames = 1) {
  return from.every((id) => {
    const r = stats.remote[id];
    return r && !r.ended && r.framesDecoded >= minFrames && r.totalSamplesReceived > 0;
  });
}

test('three members see and hear each other; a fourth joins; one leaves', async () => {
  const members = [];
  for (let i = 0; i < 3; i++) {
    members.push(await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'call' }));
  }
  const ids = members.map((m) => m.id);
  for (const m of members) {
    const others = ids.filter((id) => id !== m.id);
    const ok = await waitFor(async () => receivesAll(await m.stats(), others), 15000);
    assert.ok(ok, `${m.id} receives the others: ${JSON.stringify((await m.stats()).remote)}`);
  }

  // Over 10 s, every member decodes >= 100 more frames of each other member, at the
  // width that member sends, and keeps receiving audio.
  const before10 = await Promise.all(members.map((m) => m.stats()));
  await new Promise((r) => setTimeout(r, 10000));
  const after10 = await Promise.all(members.map((m) => m.stats()));
  const sentWidth = Object.fromEntries(after10.map((s) => [s.connectionId, s.sentFrameWidth]));
  for (let i = 0; i < members.length; i++) {
    for (const id of ids.filter((x) => x !== members[i].id)) {
      const a = before10[i].remote[id];
      const b = after10[i].remote[id];
      assert.ok(b.framesDecoded - a.framesDecoded >= 100,
        `${members[i].id} decoded ${b.framesDecoded - a.framesDecoded} frames of ${id} in 10 s`);
      assert.equal(b.frameWidth, sentWidth[id], 'frame width matches the sender');
      assert.ok(b.totalSamplesReceived > a.totalSamplesReceived, 'audio keeps arriving');
    }
  }

  // A fourth joins: everyone decodes it within 5 s (and it decodes everyone).
  const fourth = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'call' });
  const joinedAt = Date.now();
  for (const m of members) {
    const ok = await waitFor(async () => receivesAll(await m.stats(), [fourth.id]),
      5000 - (Date.now() - joinedAt));
    assert.ok(ok, `${m.id} decodes the fourth member within 5 s`);
  }
  assert.ok(await waitFor(async () => receivesAll(await fourth.stats(), ids), 5000),
    'the fourth member decodes everyone');

  // The first leaves: its tracks end for everyone within 5 s.
  const leaver = members.shift();
  await leaver.leave();
  const leftAt = Date.now();
  for (const m of [...members, fourth]) {
    const ok = await waitFor(async () => {
      const r = (await m.stats()).remote[leaver.id];
      return r && r.videoEnded && r.audioEnded;
    }, 5000 - (Date.now() - leftAt));
    assert.ok(ok, `${m.id} saw the tracks of ${leaver.id} end within 5 s`);
  }
  for (const m of [...members, fourth]) await m.leave();
});

test('/metrics before and after a two-member call moves by the right amounts', async () => {
  const before = await scrape(server);
  const a = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'metrics' });
  const b = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'metrics' });
  assert.ok(await waitFor(async () => receivesAll(await a.stats(), [b.id], 30), 15000));
  assert.ok(await waitFor(async () => receivesAll(await b.stats(), [a.id], 30), 15000));
  const during = await scrape(server);
  assert.equal(during.samples.get('hisoka_connections'), before.samples.get('hisoka_connections') + 2);
  await a.leave();
  await b.leave();
  await waitFor(async () => (await scrape(server)).samples.get('hisoka_connections')
    === before.samples.get('hisoka_connections'), 5000);
  const after = await scrape(server);
  const d = delta(before, after);
  assert.equal(d.hisoka_connections_total, 2, 'two connections admitted');
  assert.equal(d.hisoka_dtls_handshakes_total, 2, 'two DTLS handshakes');
  assert.equal(d.hisoka_offers_total, 2);
  assert.equal(d['hisoka_stun_requests_total{result="ok"}'] > 0, true, 'ICE checks answered');
  assert.ok(d.hisoka_rtp_packets_received_total > 100, 'media arrived');
  assert.ok(d.hisoka_forwarded_packets_total > 100, 'media was forwarded');
  // Each member receives only the other's media: forwarded packets cannot exceed what
  // arrived (one subscriber per packet in a two-member call).
  assert.ok(d.hisoka_forwarded_packets_total <= d.hisoka_rtp_packets_received_total);
  assert.equal(after.samples.get('hisoka_channels'), before.samples.get('hisoka_channels'));
  assert.equal(d['hisoka_srtp_errors_total{direction="in",kind="rtp"}'] || 0, 0);
  // Every received datagram is timed from its kernel receive timestamp: waited and
  // resided once each, the residence at least as long as the wait.
  for (const h of ['hisoka_receive_wait_seconds', 'hisoka_forward_residence_seconds']) {
    assert.equal(after.families[h].type, 'histogram');
    assert.equal(d[`${h}_count`], d.hisoka_packets_received_total, `${h}: one per datagram`);
    assert.equal(d[`${h}_bucket{le="+Inf"}`], d[`${h}_count`]);
    assert.ok(d[`${h}_sum`] > 0);
  }
  assert.ok(d.hisoka_forward_residence_seconds_sum >= d.hisoka_receive_wait_seconds_sum);
});
