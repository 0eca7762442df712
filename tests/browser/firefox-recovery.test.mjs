// Recovery under E2EE with hisoka's client: 20 s into a call, one receiver loses 5% of
// its packets at random (both directions, nftables in a network namespace made here)
// for 5 s; within 3 s after the loss stops it decodes every sender again. 5% loss
// alone seldom needs a key frame (NACK and retransmission repair it), so each
// receiver then asks for one and must decode it: late in a call, the key-frame path
// that broke when the codec header was encrypted.
// Two calls run side by side: a Firefox receiving from a Chromium and a Firefox, and a
// Chromium receiving from a Firefox and a Chromium. Firefox has no dependency
// descriptor, so these receivers see key frames only through the clear codec header.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { waitFor } from '../lib/browser.mjs';
import { HisokaMember, decodesAtSize, launchBrowser } from '../lib/firefox.js';
import { createNetns } from '../lib/netns.mjs';
import { startServer } from '../lib/server.mjs';

const CALL_MS = 20000;
const LOSS_MS = 5000;
const RECOVER_WITHIN_MS = 3000;
const KEY_FRAME_WITHIN_MS = 5000;

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// Drops 5% of the UDP packets between hisoka's media port and one browser port, both
// ways, counting what it drops.
function addLoss(ns, table, mediaPort, browserPort) {
  ns.nft(`table inet ${table} {
    chain input {
      type filter hook input priority 0; policy accept;
      udp sport ${mediaPort} udp dport ${browserPort} numgen random mod 100 < 5 counter drop
      udp sport ${browserPort} udp dport ${mediaPort} numgen random mod 100 < 5 counter drop
    }
  }`);
}

function removeLoss(ns, table) {
  const listing = execFileSync('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'inet', table]).toString();
  ns.nft(`delete table inet ${table}`);
  return [...listing.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

test('E2EE: 5% loss for 5 s on one receiver; it decodes again within 3 s (Firefox and Chromium receiving)', async () => {
  const ns = createNetns('hkrec');
  let server;
  const browsers = {};
  try {
    server = await startServer({ log_level: 'info', e2ee: true }, { wrap: ns.wrap });
    browsers.firefox = await launchBrowser('firefox', { netns: ns });
    browsers.chromium = await launchBrowser('chromium', { netns: ns });
    const join = (browser, channel, role, label) =>
      HisokaMember.join(browsers[browser], server, channel, { role, label });
    const calls = [
      { receiver: await join('firefox', 'rx-firefox', 'recvonly', 'Firefox receiver'),
        senders: [await join('chromium', 'rx-firefox', 'sendonly', 'Chromium sender'),
          await join('firefox', 'rx-firefox', 'sendonly', 'Firefox sender')] },
      { receiver: await join('chromium', 'rx-chromium', 'recvonly', 'Chromium receiver'),
        senders: [await join('firefox', 'rx-chromium', 'sendonly', 'Firefox sender'),
          await join('chromium', 'rx-chromium', 'sendonly', 'Chromium sender')] },
    ];
    const callStart = Date.now();
    const look = async () => Promise.all(calls.map(async (c) => ({
      receiver: await c.receiver.stats(),
      senders: await Promise.all(c.senders.map((s) => s.stats())),
    })));
    // Every receiver decodes both its senders, with frames increasing between looks,
    // at the size they send; `since` holds framesDecoded per pair to exceed.
    const decodingAll = (views, since) => calls.every((c, i) => c.senders.every((s, j) =>
      decodesAtSize(views[i].receiver, s.id, views[i].senders[j].sent, { after: since[`${i}.${j}`] ?? Infinity })));
    const framesOf = (views) => Object.fromEntries(calls.flatMap((c, i) => c.senders.map((s, j) =>
      [`${i}.${j}`, views[i].receiver.remote[s.id]?.framesDecoded || 0])));
    let previous = {};
    let views = [];
    const started = await waitFor(async () => {
      views = await look();
      const ok = decodingAll(views, previous);
      previous = framesOf(views);
      return ok;
    }, 15000, 250);
    assert.ok(started, `the receivers decode their senders: ${JSON.stringify(views)}`);

    await sleep(CALL_MS - (Date.now() - callStart));
    const before = await look();
    const tables = calls.map((c, i) => {
      const table = `loss${i}`;
      addLoss(ns, table, server.config.media_port, before[i].receiver.port);
      return table;
    });
    await sleep(LOSS_MS);
    const dropped = tables.map((t) => removeLoss(ns, t));
    const stoppedAt = Date.now();
    const during = await look();
    previous = framesOf(during);
    const atStop = { ...previous };
    const keyFramesAtStop = during.map((v) => Object.fromEntries(Object.entries(v.receiver.remote)
      .map(([id, r]) => [id, r.keyFramesDecoded])));
    const asked = await Promise.all(calls.map((c) =>
      c.receiver.page.evaluate(() => window.hisokaMember.client.e2ee.requestKeyFrames())));

    // Recovered: framesDecoded rises above its value when the loss stopped, and again
    // on the next look, at the sender's size. Then, or at the same time, a key frame
    // asked for after the loss is decoded.
    let recoveredAfter = null;
    let keyFrameAfter = null;
    await waitFor(async () => {
      views = await look();
      const now = Date.now() - stoppedAt;
      const rising = decodingAll(views, previous);
      const beyondStop = Object.entries(framesOf(views)).every(([k, n]) => n > atStop[k]);
      previous = framesOf(views);
      if (recoveredAfter === null && rising && beyondStop) recoveredAfter = now;
      const keyFrames = calls.every((c, i) => c.senders.every((x) =>
        (views[i].receiver.remote[x.id]?.keyFramesDecoded || 0) > keyFramesAtStop[i][x.id]));
      if (keyFrameAfter === null && keyFrames) keyFrameAfter = now;
      return recoveredAfter !== null && keyFrameAfter !== null;
    }, KEY_FRAME_WITHIN_MS, 100);

    for (let i = 0; i < calls.length; i++) {
      for (let j = 0; j < calls[i].senders.length; j++) {
        const id = calls[i].senders[j].id;
        const [b, d, a] = [before, during, views].map((v) => v[i].receiver.remote[id] || {});
        console.log(`# ${calls[i].receiver.label} <- ${calls[i].senders[j].label}: during the loss ` +
          `${d.framesDecoded - b.framesDecoded} frames decoded, ${d.keyFramesDecoded - b.keyFramesDecoded} key ` +
          `frames, ${d.pliCount - b.pliCount} PLIs, ${d.failed - b.failed} failed decryptions; ` +
          `then ${a.framesDecoded - d.framesDecoded} frames, ${a.keyFramesDecoded - d.keyFramesDecoded} key frames`);
      }
      console.log(`# ${calls[i].receiver.label}: ${dropped[i]} packets dropped on port ${before[i].receiver.port}`);
    }
    console.log(`# decoding again ${recoveredAfter} ms after the loss stopped, key frames asked for ` +
      `then decoded after ${keyFrameAfter} ms`);
    for (let i = 0; i < calls.length; i++) {
      assert.ok(dropped[i] > 10, `the loss rule hit ${calls[i].receiver.label}'s packets (${dropped[i]} dropped)`);
    }
    assert.ok(recoveredAfter !== null && recoveredAfter <= RECOVER_WITHIN_MS,
      `every receiver decodes every sender again within 3 s (${recoveredAfter} ms): ${JSON.stringify(views)}`);
    assert.deepEqual(asked, [2, 2], 'each receiver asked its two senders for a key frame');
    assert.ok(keyFrameAfter !== null,
      `every receiver decodes a key frame it asked for after the loss (within ${KEY_FRAME_WITHIN_MS} ms): ` +
      JSON.stringify(views));
    for (const c of calls) for (const m of [c.receiver, ...c.senders]) await m.leave();
  } finally {
    for (const b of Object.values(browsers)) await b?.close();
    await server?.stop();
    ns.destroy();
  }
});
