// The server as attacker against an MLS channel, in browsers (issue 14, docs/threats.md
// 15): replayed frames. SRTP ends at the server, so only the server can replay media:
// here hisoka itself, built with its test attacks (make attack-build) and started with
// HISOKA_TEST_ATTACK=replay, sends each subscriber complete earlier video frames again as
// new ones (new sequence numbers and timestamp, the SFrame bytes unchanged; sfu/consumer.c
// replay_attack), and logs each. The receiving Chromium page drops every one by its SFrame
// counter (the replay window of client/sframe-mls.js) and counts it, and the genuine
// video goes on decoding.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { waitFor } from '../lib/browser.mjs';
import { launchBrowser } from '../lib/firefox.js';
import { MlsPage } from '../lib/mls-member.mjs';
import { ROOT, startServer } from '../lib/server.mjs';

const ATTACK_BIN = process.env.HISOKA_ATTACK_BIN || path.join(ROOT, 'build-attack/hisoka');
const skip = fs.existsSync(ATTACK_BIN) ? false : `${ATTACK_BIN} is missing (make attack-build)`;
// sfu/consumer.c: REPLAY_ROUNDS frames, each replayed REPLAY_TIMES, per video consumer.
const REPLAYS = 4 * 3;
// Frames in flight between the sender's and the receiver's counters when both are read.
const IN_FLIGHT = 6;

let server;
let browser;
const pages = [];

before(async () => {
  if (skip) return;
  server = await startServer({ log_level: 'info', e2ee: true },
    { bin: ATTACK_BIN, env: { HISOKA_TEST_ATTACK: 'replay' } });
  browser = await launchBrowser('chromium');
});
after(async () => {
  for (const p of pages) await p.leave().catch(() => {});
  await browser?.close();
  await server?.stop();
});

// The replays hisoka logged to the subscriber with connection id `id`.
function replaysTo(id) {
  return server.log.split('\n').filter((l) => l.includes('test attack: replayed frame') && l.includes(id)).length;
}

test('frames the server replays (complete, as new frames) are dropped and counted; the genuine video decodes', { skip }, async () => {
  const channel = `mls-replay-${process.pid}`;
  for (let i = 0; i < 2; i++) pages.push(await MlsPage.join(browser, server, channel));
  const [a, b] = pages;
  // Before the first replay (REPLAY_START_MS after b's first packet of a's video): b
  // decrypts a's frames.
  let s0;
  assert.ok(await waitFor(async () => {
    s0 = await b.state();
    return (s0.e2ee[a.id]?.decrypted || 0) > 10 && (s0.remote[a.id]?.framesDecoded || 0) > 5;
  }, 10000, 100), `b decrypts a's frames: ${JSON.stringify(s0?.e2ee)}`);
  const e0 = (await a.state()).e2ee.encrypted;
  assert.equal(replaysTo(b.id), 0, 'no replay yet at the baseline');
  assert.equal(s0.e2ee.mls.replayed, 0);

  // The attack ends by itself: REPLAYS per subscriber, then the page's count settles.
  assert.ok(await waitFor(async () => replaysTo(b.id) >= REPLAYS && replaysTo(a.id) >= REPLAYS, 30000, 200),
    `hisoka replayed ${replaysTo(b.id)} frames to b, ${replaysTo(a.id)} to a`);
  let s1;
  let sa;
  await waitFor(async () => {
    [s1, sa] = await Promise.all([b.state(), a.state()]);
    return s1.e2ee.mls.replayed >= REPLAYS && sa.e2ee.mls.replayed >= REPLAYS;
  }, 3000, 100);
  const e1 = (await a.state()).e2ee.encrypted;
  const sent = replaysTo(b.id);
  const decrypted = s1.e2ee[a.id].decrypted - s0.e2ee[a.id].decrypted;
  const decoded = s1.remote[a.id].framesDecoded - s0.remote[a.id].framesDecoded;
  console.log(`# hisoka replayed ${sent} frames to b (${replaysTo(a.id)} to a); b counted ${s1.e2ee.mls.replayed} `
    + `as replayed (a ${sa.e2ee.mls.replayed}); meanwhile a encrypted ${e1 - e0} frames, b decrypted ${decrypted} `
    + `of a's and decoded ${decoded} of its video frames; b's other drops: ${JSON.stringify(s1.e2ee.mls)}`);
  assert.equal(sent, REPLAYS, 'the attack ran in full');
  assert.equal(s1.e2ee.mls.replayed, sent, 'every replayed frame was dropped and counted as a replay');
  assert.equal(sa.e2ee.mls.replayed, replaysTo(a.id), 'the same on the other page');
  // Not one replay decrypted: b decrypted no more of a's frames than a encrypted meanwhile
  // (audio and video), but for those in flight at the two readings.
  assert.ok(decrypted <= e1 - e0 + IN_FLIGHT, `b decrypted ${decrypted} of a's frames, a encrypted ${e1 - e0}`);
  assert.ok(decoded > 100, `the genuine video kept decoding: ${decoded} frames`);
});
