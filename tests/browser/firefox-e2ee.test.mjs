// Firefox ESR and Chromium in one E2EE channel with hisoka's client, in both join
// orders, with a late joiner 15 s after the others (a Firefox, making two; then a
// Chromium). Firefox negotiates no dependency descriptor, so these receivers find key
// frames only through the codec header the client leaves in clear (docs/protocol.md
// §4.4). Every member must decode every other within 5 s at the sender's frame size,
// and all agree on each other's safety numbers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { waitFor } from '../lib/browser.mjs';
import { HisokaMember, decodesAtSize, launchBrowser } from '../lib/firefox.js';
import { startServer } from '../lib/server.mjs';

const LATE_JOIN_MS = 15000;
const DECODE_WITHIN_MS = 5000;

let server;
const browsers = {};
before(async () => {
  server = await startServer({ log_level: 'info', e2ee: true });
  browsers.firefox = await launchBrowser('firefox');
  browsers.chromium = await launchBrowser('chromium');
  console.log(`# ${browsers.firefox.version}`);
});
after(async () => {
  for (const b of Object.values(browsers)) await b?.close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// Waits up to ms until every member decodes every other member's video at that
// member's sent size, with framesDecoded increasing between two looks. Returns
// {missing: ['receiver <- sender', ...], stats: {[id]: stats}, times: {pair: ms}}.
async function everyoneDecodes(members, ms) {
  const start = Date.now();
  const previous = {};
  const times = {};
  const pending = new Set();
  for (const r of members) for (const s of members) if (r !== s) pending.add(`${r.id}<-${s.id}`);
  let stats = {};
  await waitFor(async () => {
    const all = await Promise.all(members.map((m) => m.stats()));
    stats = Object.fromEntries(all.map((s) => [s.connectionId, s]));
    for (const key of [...pending]) {
      const [r, s] = key.split('<-');
      const frames = stats[r].remote[s]?.framesDecoded || 0;
      if (decodesAtSize(stats[r], s, stats[s].sent, { after: previous[key] ?? Infinity })) {
        pending.delete(key);
        times[key] = Date.now() - start;
      }
      previous[key] = frames;
    }
    return pending.size === 0;
  }, ms, 200);
  const label = Object.fromEntries(members.map((m) => [m.id, m.label]));
  const name = (key) => key.split('<-').map((id) => label[id]).join(' <- ');
  return {
    missing: [...pending].map(name),
    stats,
    times: Object.fromEntries(Object.entries(times).map(([k, v]) => [name(k), v])),
  };
}

function describe(result) {
  return JSON.stringify(Object.fromEntries(Object.entries(result.stats)
    .map(([id, s]) => [id, { sent: s.sent, remote: s.remote, errors: s.errors }])));
}

async function checkSafetyNumbers(members) {
  const views = await Promise.all(members.map((m) => m.safety()));
  for (let i = 0; i < members.length; i++) {
    assert.match(views[i].own, /^\d{5}( \d{5}){5}$/);
    for (let j = 0; j < members.length; j++) {
      if (i === j) continue;
      assert.equal(views[j].seen[members[i].id], views[i].own,
        `${members[j].label} shows ${members[i].label}'s own safety number`);
    }
  }
}

// first: browser names in join order; late: the browser of the member joining 15 s
// later.
async function lateJoinerCall(channel, first, late) {
  const members = [];
  for (const name of first) {
    members.push(await HisokaMember.join(browsers[name], server, channel,
      { label: `${name} #${members.length + 1}` }));
  }
  const joinedAt = Date.now();
  const early = await everyoneDecodes(members, DECODE_WITHIN_MS);
  console.log(`# ${first.join(' then ')}: decoding after ${JSON.stringify(early.times)} ms`);
  assert.deepEqual(early.missing, [], `decode within 5 s: ${describe(early)}`);

  await sleep(LATE_JOIN_MS - (Date.now() - joinedAt));
  const joiner = await HisokaMember.join(browsers[late], server, channel, { label: `late ${late}` });
  members.push(joiner);
  const all = await everyoneDecodes(members, DECODE_WITHIN_MS);
  console.log(`# late ${late} after ${Date.now() - joinedAt} ms: decoding after ` +
    `${JSON.stringify(all.times)} ms`);
  assert.deepEqual(all.missing, [], `every member decodes every other within 5 s of the late join: ${describe(all)}`);
  for (const m of members) {
    const s = all.stats[m.id];
    assert.deepEqual(s.errors, [], `${m.label}: no client errors`);
    assert.ok(s.encrypted > 0, `${m.label}: its frames went through the E2EE worker`);
    for (const other of members) {
      if (other === m) continue;
      assert.ok(s.remote[other.id].decrypted > 0, `${m.label} decrypts ${other.label}`);
      assert.ok(s.remote[other.id].audioSamples > 0, `${m.label} receives audio of ${other.label}`);
    }
  }
  await checkSafetyNumbers(members);
  for (const m of members) await m.leave();
}

test('E2EE: Firefox then Chromium, a second Firefox joins 15 s later', async () => {
  await lateJoinerCall('ff-first', ['firefox', 'chromium'], 'firefox');
});

test('E2EE: Chromium then Firefox, a second Chromium joins 15 s later', async () => {
  await lateJoinerCall('cr-first', ['chromium', 'firefox'], 'chromium');
});
