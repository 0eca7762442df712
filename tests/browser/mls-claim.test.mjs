// A member against the others in an MLS channel, in browsers (issue 14, docs/threats.md
// 15): the index claim. Every member of an MLS group holds the epoch's SFrame base key,
// so every member can derive every other member's frame key (RFC 9605 §5.2: the key is
// derived from the base key and the KID) and stamp another member's leaf index on its
// own frames. Before the sender check, such frames were accepted and moved the named
// member's replay window far ahead: a joiner then dropped all of that member's genuine
// frames as too old (blinded to it).
//
// Here the attacker is a Chromium page whose client is modified by the test (the worker's
// e2ee-frames.js is served edited through page.route, nothing of it is in client/): after
// every epoch it encrypts all its frames under the victim's leaf index, with counters
// from 2^20 on. A Chromium joiner, then a Firefox joiner, must drop every one of those
// frames and count it (stats.mls.wrongSender), decrypt nothing on the attacker's track,
// and go on decoding the victim's genuine video.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { splitFrame } from '../../client/frame-format.js';
import { decodeHeader } from '../../client/sframe.js';
import { splitMlsKid } from '../../client/sframe-mls.js';
import { waitFor } from '../lib/browser.mjs';
import { launchBrowser } from '../lib/firefox.js';
import { MlsPage } from '../lib/mls-member.mjs';
import { startServer } from '../lib/server.mjs';

// The attacker's counters start here: far ahead of any genuine sender's in an epoch.
const CLAIM_COUNTER = 1 << 20;
// How long the joiner is watched once it is in the group.
const WATCH_MS = 4000;
// Frames in flight between the sender's and the receiver's counters when both are read.
const IN_FLIGHT = 10;

let server;
const browsers = {};
const pages = [];

before(async () => {
  server = await startServer({ log_level: 'info', e2ee: true });
  browsers.chromium = await launchBrowser('chromium');
  browsers.firefox = await launchBrowser('firefox');
});
after(async () => {
  for (const p of pages) await p.leave().catch(() => {});
  for (const b of Object.values(browsers)) await b?.close();
  await server?.stop();
});

// The worker's e2ee-frames.js with the attack: on each new epoch the frame keys take the
// victim's leaf index as our own (so encrypt() stamps the victim's KID and uses the
// victim's key), and the send counter jumps to CLAIM_COUNTER.
const SET_EPOCH = 'this.mls.setEpoch({ epoch: BigInt(msg.epoch), baseKey: bytesOf(msg.baseKey), leafIndex: msg.leafIndex });';
function claimingSource(source, victimId) {
  assert.ok(source.includes(SET_EPOCH), 'e2ee-frames.js still sets the epoch as the attack expects');
  return source.replace(SET_EPOCH, `this.mls.setEpoch({ epoch: BigInt(msg.epoch), baseKey: bytesOf(msg.baseKey),
        leafIndex: msg.leaves?.[${JSON.stringify(victimId)}] ?? msg.leafIndex });
      this.mls.sendCounter = ${CLAIM_COUNTER}n;`);
}

// A browser whose next page loads the edited worker module.
function claimingBrowser(browser, victimId) {
  return {
    ...browser,
    async newPage() {
      const page = await browser.newPage();
      await page.route('**/demo/e2ee-frames.js', async (route) => {
        const response = await route.fetch();
        await route.fulfill({ response, body: claimingSource(await response.text(), victimId) });
      });
      return page;
    },
  };
}

// The next n frames page m sends, as {leafIndex, ctr} of their SFrame headers.
async function sentKids(m, n) {
  return (await m.captureSent(n)).map((f) => {
    const h = decodeHeader(splitFrame(f.codec, Uint8Array.from(f.bytes)).sframe);
    return { leafIndex: splitMlsKid(h.kid).leafIndex, ctr: Number(h.ctr) };
  });
}

const leafOf = async (m, id) => (await m.page.evaluate(() => window.mlsMember.client.e2ee.members()))
  .find((x) => x.connectionId === id)?.leafIndex;

test('a member claiming another member\'s leaf index: a joiner drops and counts its frames and keeps decoding the genuine member', async () => {
  const channel = `mls-claim-${process.pid}`;
  const victim = await MlsPage.join(browsers.chromium, server, channel, { label: 'victim' });
  pages.push(victim);
  const attacker = await MlsPage.join(claimingBrowser(browsers.chromium, victim.id), server, channel, { label: 'attacker' });
  pages.push(attacker);

  // The attack is live: once both are in the group, every frame the attacker sends names
  // the victim's leaf, with counters far ahead of the victim's.
  assert.ok(await waitFor(async () => {
    const [v, a] = await Promise.all([victim.state(), attacker.state()]);
    return v.epoch !== null && v.epoch === a.epoch && a.roster.length === 2;
  }, 15000, 200), 'victim and attacker in one group');
  const victimLeaf = await leafOf(victim, victim.id);
  const attackerLeaf = await leafOf(victim, attacker.id);
  assert.notEqual(victimLeaf, attackerLeaf);
  const kids = await sentKids(attacker, 20);
  assert.ok(kids.every((k) => k.leafIndex === victimLeaf && k.ctr >= CLAIM_COUNTER),
    `the attacker stamps the victim's leaf ${victimLeaf} (its own is ${attackerLeaf}): ${JSON.stringify(kids.slice(0, 3))}`);

  for (const name of ['chromium', 'firefox']) {
    const joiner = await MlsPage.join(browsers[name], server, channel, { label: `${name} joiner` });
    pages.push(joiner);
    const members = [victim, attacker, joiner];
    const ids = members.map((m) => m.id).sort();
    // In the group, on the epoch of its join, decrypting the victim and counting the
    // attacker's claims.
    let s;
    assert.ok(await waitFor(async () => {
      const states = await Promise.all(members.map((m) => m.state()));
      s = states[2];
      return states.every((x) => x.epoch === s.epoch && JSON.stringify(x.roster) === JSON.stringify(ids))
        && s.e2ee[victim.id]?.epochBits === s.epoch % 256 && (s.remote[victim.id]?.framesDecoded || 0) > 10
        && (s.e2ee.mls?.wrongSender || 0) > 10;
    }, 20000, 200), `${name} joiner decodes the victim and counts claims: ${JSON.stringify(s?.e2ee)}`);
    // The attack goes on at the joiner's epoch.
    const now = await sentKids(attacker, 10);
    assert.ok(now.every((k) => k.leafIndex === victimLeaf && k.ctr >= CLAIM_COUNTER), 'still claiming after the join');

    const read = () => Promise.all([joiner.state(), victim.state(), attacker.state()]);
    const [j0, v0, a0] = await read();
    await new Promise((r) => setTimeout(r, WATCH_MS));
    const [j1, v1, a1] = await read();
    const claimed = a1.e2ee.encrypted - a0.e2ee.encrypted;
    const dropped = j1.e2ee.mls.wrongSender - j0.e2ee.mls.wrongSender;
    const sent = v1.e2ee.encrypted - v0.e2ee.encrypted;
    const decrypted = j1.e2ee[victim.id].decrypted - j0.e2ee[victim.id].decrypted;
    const decoded = j1.remote[victim.id].framesDecoded - j0.remote[victim.id].framesDecoded;
    console.log(`# ${name} joiner, ${WATCH_MS} ms: the attacker sent ${claimed} frames under the victim's leaf `
      + `${victimLeaf}; the joiner dropped ${dropped} as wrong sender (${j1.e2ee.mls.wrongSender} in all), decrypted `
      + `${j1.e2ee[attacker.id]?.decrypted || 0} on the attacker's track; of the victim's ${sent} frames it decrypted `
      + `${decrypted} and decoded ${decoded} video frames; its MLS drops: ${JSON.stringify(j1.e2ee.mls)}`);
    assert.equal(j1.e2ee[attacker.id]?.decrypted || 0, 0, 'nothing decrypted on the attacker\'s track (all of it claims the victim)');
    // Every frame that came on the attacker's track was dropped as wrong sender, and only
    // those were; they were (nearly) all the attacker sent (the two pages' counts are read
    // a moment apart, and a loaded receiver may lose a few).
    const onTrack = (j1.e2ee[attacker.id]?.failed || 0) - (j0.e2ee[attacker.id]?.failed || 0);
    assert.equal(dropped, onTrack, `the ${onTrack} frames on the attacker's track are the ${dropped} counted as wrong sender`);
    assert.ok(dropped <= claimed + IN_FLIGHT, `only claimed frames were counted as wrong sender: ${dropped} of ${claimed}`);
    assert.ok(dropped >= 0.8 * claimed - IN_FLIGHT, `the claimed frames reached the joiner: ${dropped} of ${claimed}`);
    assert.equal(j1.e2ee.mls.replayed, 0, 'no genuine frame of the victim taken for a replay');
    // No more than the victim sent (none of the attacker's among them); nearly all of them.
    assert.ok(decrypted <= sent + IN_FLIGHT, `the joiner decrypted no more of the victim's frames than it sent: ${decrypted} of ${sent}`);
    assert.ok(decrypted >= 0.8 * sent - IN_FLIGHT, `the joiner decrypts the victim's frames: ${decrypted} of ${sent}`);
    assert.ok(decoded > (WATCH_MS / 1000) * 10, `the joiner is not blinded to the victim: ${decoded} video frames decoded`);
    pages.pop();
    await joiner.leave();
  }
});
