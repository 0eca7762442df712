// Two media workers (workers = 2): channels are placed on the least loaded one, each
// worker carries its channels' media on its own port and thread, and a call works on
// each. /stats tells where everything is.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallMember, serverAndBrowser, waitFor } from '../lib/browser.mjs';
import { connectClient } from '../lib/client.mjs';
import { apiRequest, startServer } from '../lib/server.mjs';

let server;
let browser;
serverAndBrowser({ log_level: 'info', workers: 2 }, (s, b) => { server = s; browser = b; });

async function stats() {
  return JSON.parse((await apiRequest(server, '/stats')).text);
}

// The UDP port of the host candidate in an offer's SDP.
function candidatePort(sdp) {
  const m = /a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host/.exec(sdp);
  return m ? Number(m[1]) : 0;
}

test('20 channels are spread over both workers, each offered its worker\'s port', async () => {
  const clients = [];
  const ports = new Map(); // channel -> candidate port of its offer
  for (let i = 0; i < 20; i++) {
    const c = await connectClient(server.url, { role: 'sendrecv', channel_id: `spread-${i}` });
    const offer = await c.next('offer');
    ports.set(`spread-${i}`, candidatePort(offer.sdp));
    clients.push(c);
  }
  const s = await stats();
  assert.equal(s.workers.length, 2, 'two workers in /stats');
  const media = Number(server.config.media_port);
  assert.deepEqual(s.workers.map((w) => w.media_port), [media, media + 1]);
  assert.deepEqual(s.workers.map((w) => w.channels), [10, 10], JSON.stringify(s.workers));
  assert.deepEqual(s.workers.map((w) => w.connections), [10, 10]);
  assert.deepEqual(s.workers.map((w) => w.transports), [10, 10]);
  for (const ch of s.channels.filter((c) => c.channel_id.startsWith('spread-'))) {
    assert.equal(ports.get(ch.channel_id), media + ch.worker,
      `${ch.channel_id} lives on worker ${ch.worker}: its offer names that worker's port`);
  }
  for (const c of clients) c.close();
  assert.ok(await waitFor(async () => {
    const w = (await stats()).workers;
    return w.every((x) => x.channels === 0 && x.connections === 0 && x.transports === 0);
  }, 5000), 'channels and transports leave their workers');
});

function receivesAll(st, from, minFrames) {
  return from.every((id) => {
    const r = st.remote[id];
    return r && !r.ended && r.framesDecoded >= minFrames && r.totalSamplesReceived > 0;
  });
}

test('a three-member call on each worker: everyone decodes everyone', async () => {
  const calls = [];
  for (const channel of ['left', 'right']) {
    const members = [];
    for (let i = 0; i < 3; i++) {
      members.push(await CallMember.join(browser, server, { role: 'sendrecv', channel_id: channel }));
    }
    calls.push(members);
  }
  const s = await stats();
  const workerOf = Object.fromEntries(s.channels.map((c) => [c.channel_id, c.worker]));
  assert.notEqual(workerOf.left, workerOf.right, `the calls are on different workers: ${JSON.stringify(workerOf)}`);
  for (const members of calls) {
    const ids = members.map((m) => m.id);
    for (const m of members) {
      const others = ids.filter((id) => id !== m.id);
      const ok = await waitFor(async () => receivesAll(await m.stats(), others, 60), 20000);
      assert.ok(ok, `${m.id} decodes the others: ${JSON.stringify((await m.stats()).remote)}`);
    }
  }
  // Both workers forwarded media: each carries its own call.
  const after = await stats();
  for (const w of after.workers) {
    assert.ok(w.forwarded_packets > 1000, `worker ${w.index} forwarded ${w.forwarded_packets}`);
    assert.equal(w.connections, 3);
  }
  for (const members of calls) for (const m of members) await m.leave();
});

// A channel over both workers (channel_spread_threshold = 2): the third member's media is
// on the other worker, and every track crosses between them through relays, both ways:
// its key frames are asked through the relay, its NACKs answered from the mirror's cache.
test('a channel spread over both workers: the third member decodes the first two, they decode it', async () => {
  const spread = await startServer({ log_level: 'info', workers: 2, channel_spread_threshold: 2 });
  const members = [];
  try {
    for (let i = 0; i < 3; i++) {
      members.push(await CallMember.join(browser, spread, { role: 'sendrecv', channel_id: 'spread' }));
    }
    const s = JSON.parse((await apiRequest(spread, '/stats')).text);
    const workerOf = Object.fromEntries((await Promise.all(members.map(async (m) => {
      const c = JSON.parse((await apiRequest(spread, `/stats/connections/${m.id}`)).text);
      return [m.id, c.worker];
    }))));
    assert.deepEqual(members.map((m) => workerOf[m.id]), [0, 0, 1], JSON.stringify(s.workers));
    const ids = members.map((m) => m.id);
    for (const m of members) {
      const others = ids.filter((id) => id !== m.id);
      const ok = await waitFor(async () => receivesAll(await m.stats(), others, 60), 20000);
      assert.ok(ok, `${m.id} decodes the others: ${JSON.stringify((await m.stats()).remote)}`);
    }
    const after = JSON.parse((await apiRequest(spread, '/stats')).text);
    assert.ok(after.media.relay_packets > 1000, `relayed ${after.media.relay_packets}`);
    assert.equal(after.media.relay_dropped, 0);
    assert.match(spread.log, /relays its video from worker 0 to worker 1/);
    assert.match(spread.log, /relays its video from worker 1 to worker 0/);
  } finally {
    for (const m of members) await m.leave();
    await spread.stop();
  }
});
