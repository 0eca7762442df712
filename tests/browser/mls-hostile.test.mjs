// The server as attacker against an MLS channel, in browsers (issue 14, docs/threats.md
// 15): a proxy between the pages and hisoka that edits signaling. Here: a ghost. The
// attacker joins the channel with a key package of its own (a ts-mls member that goes to
// hisoka directly), and the proxy hides it from every page's notify. The group still
// contains it, so every page lists it in its roster, says so in a banner and shows a new
// verification code; of the frames a page sent before the ghost came, the ghost decrypts
// none (and of those after, all: it is a member everyone sees).
// Then a flash ghost: in and out at once, still seen as joined and left on every page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocketServer, WebSocket } from 'ws';

import { splitFrame } from '../../client/frame-format.js';
import { MlsMember, T, encodeEnvelope } from '../../client/mls.js';
import { MlsFrameKeys } from '../../client/sframe-mls.js';
import { waitFor } from '../lib/browser.mjs';
import { launchBrowser } from '../lib/firefox.js';
import { MlsPage } from '../lib/mls-member.mjs';
import { lastEpoch, mlsJoin } from '../lib/mls-node.mjs';
import { startServer } from '../lib/server.mjs';

let server;
let proxy;
const browsers = {};
const pages = [];

// How many of sender's frames the ghost decrypts with the keys of its epochs.
async function ghostDecrypts(ghost, senderId, frames) {
  let ok = 0;
  for (const f of frames) {
    for (const e of ghost.epochs) {
      const keys = new MlsFrameKeys();
      keys.setEpoch({ epoch: e.epoch, baseKey: e.baseKey, leafIndex: e.leaves[ghost.id] });
      const { prefix, sframe } = splitFrame(f.codec, Uint8Array.from(f.bytes));
      try {
        await keys.decrypt(sframe, prefix, e.leaves[senderId]);
        ok++;
        break;
      } catch { /* not with this epoch's keys */ }
    }
  }
  return ok;
}

// A signaling proxy: every page's WebSocket goes through it to hisoka. It drops notify
// messages about any connection that did not come through it (the ghost). swap(id)
// takes over a page's MLS membership: the proxy reports INVALID in the page's name, so
// the server removes it and asks for a new key package, which the proxy's own ts-mls
// member (named as the page, with its own keys) sends; from then on the page's MLS
// messages go to that member.
function startProxy(target) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  const ours = new Set();
  const hidden = [];
  const conns = new Map(); // connection id -> {upstream, impostor}
  let nextSwap = null; // [idA, idB] to exchange in the SDP the next connection gets
  wss.on('connection', (client) => {
    const upstream = new WebSocket(target);
    const conn = { upstream, impostor: null, exchange: nextSwap };
    nextSwap = null;
    const early = [];
    upstream.on('open', () => { for (const [d, b] of early.splice(0)) upstream.send(d, { binary: b }); });
    client.on('message', (data, binary) => {
      if (binary && conn.impostor) return; // the page's own MLS messages no longer count
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
      else early.push([data, binary]);
    });
    upstream.on('message', (data, binary) => {
      if (!binary) {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'offer') {
          ours.add(msg.connection_id);
          conns.set(msg.connection_id, conn);
        }
        if (msg.type === 'notify' && msg.connection_id && !ours.has(msg.connection_id)) {
          hidden.push(msg.event_type);
          return;
        }
        if (msg.type === 'notify' && Array.isArray(msg.data)) msg.data = msg.data.filter((d) => ours.has(d.connection_id));
        if (conn.exchange && typeof msg.sdp === 'string') {
          // Tell this page that A's tracks are B's and B's are A's: the server "moves"
          // each one's frames onto the other's track.
          const [a, b] = conn.exchange;
          msg.sdp = msg.sdp.replaceAll(a, '\u0000').replaceAll(b, a).replaceAll('\u0000', b);
        }
        client.send(JSON.stringify(msg));
        return;
      }
      if (conn.impostor) conn.impostor.receive(new Uint8Array(data));
      else client.send(data, { binary: true });
    });
    const end = () => { client.close(); upstream.close(); };
    client.on('close', end);
    upstream.on('close', (code, reason) => client.close(code, reason.toString()));
    client.on('error', end);
    upstream.on('error', end);
  });
  return new Promise((resolve) => wss.on('listening', () => resolve({
    url: `ws://127.0.0.1:${wss.address().port}/signaling`, hidden,
    swap(id) {
      const conn = conns.get(id);
      conn.epochs = [];
      conn.impostor = new MlsMember({
        connectionId: id,
        send: (bytes) => conn.upstream.send(Buffer.from(bytes), { binary: true }),
        onEpoch: (info) => conn.epochs.push(Number(info.epoch)),
      });
      conn.upstream.send(Buffer.from(encodeEnvelope(T.INVALID, 0n)), { binary: true });
      return conn;
    },
    exchangeNext(a, b) { nextSwap = [a, b]; },
    close: () => new Promise((r) => wss.close(r)),
  })));
}

before(async () => {
  server = await startServer({ log_level: 'info', e2ee: true });
  proxy = await startProxy(server.url);
  browsers.chromium = await launchBrowser('chromium');
  browsers.firefox = await launchBrowser('firefox');
});
after(async () => {
  for (const p of pages) await p.leave().catch(() => {});
  for (const b of Object.values(browsers)) await b?.close();
  await proxy?.close();
  await server?.stop();
});

test('a ghost hidden from notify shows in every roster, in a banner and in a new code on every screen', async () => {
  const channel = `mls-ghost-${process.pid}`;
  const via = { url: proxy.url, apiUrl: server.apiUrl };
  for (const name of ['chromium', 'chromium', 'firefox']) pages.push(await MlsPage.join(browsers[name], via, channel));
  const ids = pages.map((p) => p.id).sort();
  let states = [];
  const agreed = (want) => waitFor(async () => {
    states = await Promise.all(pages.map((p) => p.state()));
    return states.every((s) => s.epoch !== null && s.epoch === states[0].epoch && s.code === states[0].code
      && JSON.stringify(s.roster) === JSON.stringify(want));
  }, 15000, 200);
  assert.ok(await agreed(ids), `three pages agree: ${JSON.stringify(states.map((s) => [s.epoch, s.code, s.roster]))}`);
  const before0 = { epoch: states[0].epoch, code: states[0].code };
  // Frames the pages encrypted so far (all of epochs up to before0.epoch), and 40 of
  // page 0's as sent, just before the ghost comes.
  const encryptedBefore = states.map((s) => s.e2ee.encrypted);
  const framesBefore = await pages[0].captureSent(40);

  const ghost = await mlsJoin(server, channel);
  const all = [...ids, ghost.id].sort();
  assert.ok(await agreed(all), `every page lists the ghost: ${JSON.stringify(states.map((s) => s.roster))}`);
  await waitFor(async () => lastEpoch(ghost)?.epoch === states[0].epoch, 5000, 50);
  for (const s of states) {
    assert.notEqual(s.code, before0.code, 'the verification code changed');
    const u = s.rosters.find((x) => x.epoch === s.epoch);
    assert.ok(u.added.includes(ghost.id), `${s.id} was told: ${u.banner}`);
    assert.match(u.banner, new RegExp(`joined: .*${ghost.id}.* — verification code now ${s.code}`));
    assert.ok(!s.notifies.some((n) => n.id === ghost.id), 'the server hid it from notify');
  }
  assert.ok(proxy.hidden.length > 0, 'the proxy hid notifies');
  assert.equal(lastEpoch(ghost).code, states[0].code, 'the ghost shows the same code (it is in the group)');
  // The ghost came in at an epoch after every frame counted above; MLS gives it no
  // earlier epoch secret (its first epoch is its join).
  assert.equal(ghost.epochs[0].epoch, states[0].epoch);
  assert.ok(ghost.epochs[0].epoch > before0.epoch);
  const framesAfter = await pages[0].captureSent(40);
  const readBefore = await ghostDecrypts(ghost, pages[0].id, framesBefore);
  const readAfter = await ghostDecrypts(ghost, pages[0].id, framesAfter);
  console.log(`# ghost at epoch ${ghost.epochs[0].epoch} (pages had encrypted ${encryptedBefore.join(', ')} frames `
    + `before, all of epochs <= ${before0.epoch}); code ${before0.code} -> ${states[0].code} on every page; `
    + `it decrypts ${readBefore} of ${framesBefore.length} frames sent before it came, ${readAfter} of `
    + `${framesAfter.length} after`);
  assert.equal(readBefore, 0, 'the ghost reads nothing sent before it came');
  assert.ok(readAfter > 0, 'control: it reads what is sent while it is a (visible) member');
  ghost.client.close();
  assert.ok(await agreed(ids), 'the ghost leaves the roster when it goes');
});

test('a flash ghost (in and out at once, hidden from notify) shows as joined and left on every screen', async () => {
  let states = [];
  const ids = pages.map((p) => p.id).sort();
  const channel = `mls-ghost-${process.pid}`;
  states = await Promise.all(pages.map((p) => p.state()));
  const start = { epoch: states[0].epoch, code: states[0].code };
  const ghost = await mlsJoin(server, channel);
  // Gone as soon as it is in the group.
  await waitFor(async () => ghost.epochs.length > 0, 5000, 5);
  ghost.client.close();
  const ok = await waitFor(async () => {
    states = await Promise.all(pages.map((p) => p.state()));
    return states.every((s) => s.epoch >= start.epoch + 2 && JSON.stringify(s.roster) === JSON.stringify(ids)
      && s.code === states[0].code);
  }, 15000, 200);
  assert.ok(ok, `pages back to three: ${JSON.stringify(states.map((s) => [s.epoch, s.roster.length]))}`);
  for (const s of states) {
    const inUpdate = s.rosters.find((u) => u.epoch > start.epoch && u.added?.includes(ghost.id));
    const outUpdate = s.rosters.find((u) => u.epoch > start.epoch && u.removed?.includes(ghost.id));
    assert.ok(inUpdate && outUpdate, `${s.id} was told of both: ${JSON.stringify(s.rosters.slice(-3))}`);
    assert.ok(inUpdate.code !== start.code && outUpdate.code !== inUpdate.code, 'three codes');
    assert.ok(!s.notifies.some((n) => n.id === ghost.id), 'the server hid it from notify');
  }
  console.log(`# flash ghost: epochs ${start.epoch} -> ${states[0].epoch}, banners on every page: `
    + `"${states[0].rosters.find((u) => u.added?.includes(ghost.id)).banner}", `
    + `"${states[0].rosters.find((u) => u.removed?.includes(ghost.id)).banner}"`);
});

test('moved frames (a page told that A\'s tracks are B\'s and the reverse) are dropped and counted', async () => {
  const channel = `mls-ghost-${process.pid}`;
  const via = { url: proxy.url, apiUrl: server.apiUrl };
  const [a, third, b] = pages;
  proxy.exchangeNext(a.id, b.id);
  const c = await MlsPage.join(browsers.chromium, via, channel, { label: 'moved-to' });
  pages.push(c);
  let st;
  const ok = await waitFor(async () => {
    st = await c.state();
    return (st.e2ee[third.id]?.decrypted || 0) > 50 && (st.e2ee.mls?.wrongSender || 0) > 50;
  }, 20000, 300);
  const fromAB = (st.e2ee[a.id]?.decrypted || 0) + (st.e2ee[b.id]?.decrypted || 0);
  console.log(`# moved: the page decrypted ${st.e2ee[third.id]?.decrypted || 0} frames of the untouched member, `
    + `${fromAB} of the two whose tracks were exchanged; dropped as wrong sender: ${st.e2ee.mls?.wrongSender}`);
  assert.ok(ok, `the untouched member decodes, moved frames are counted: ${JSON.stringify(st.e2ee)}`);
  assert.equal(fromAB, 0, 'no moved frame was accepted');
  pages.pop();
  await c.leave();
  const ids = pages.map((p) => p.id).sort();
  assert.ok(await waitFor(async () => (await Promise.all(pages.map((p) => p.state())))
    .every((x) => JSON.stringify(x.roster) === JSON.stringify(ids)), 15000, 200), 'back to three');
});

test('a swap (the server takes over a member\'s name with its own key) shows as a key change on every other screen', async () => {
  const ids = pages.map((p) => p.id).sort();
  // From one epoch that every page is on (the last test waited for the roster only).
  let states = [];
  assert.ok(await waitFor(async () => {
    states = await Promise.all(pages.map((p) => p.state()));
    return states.every((x) => x.epoch === states[0].epoch && JSON.stringify(x.roster) === JSON.stringify(ids));
  }, 15000, 200), `one epoch before the swap: ${JSON.stringify(states.map((x) => [x.epoch, x.roster.length]))}`);
  const start = { epoch: states[0].epoch, code: states[0].code };
  const victim = pages[1];
  const others = pages.filter((p) => p !== victim);
  const conn = proxy.swap(victim.id);
  assert.ok(await waitFor(async () => conn.epochs.length > 0, 15000, 50), 'the impostor got into the group');
  const ok = await waitFor(async () => {
    states = await Promise.all(others.map((p) => p.state()));
    return states.every((s) => s.epoch === conn.epochs[0] && JSON.stringify(s.roster) === JSON.stringify(ids));
  }, 15000, 200);
  assert.ok(ok, `the others reach the impostor's epoch: ${JSON.stringify(states.map((s) => [s.epoch, s.roster.length]))}`);
  for (const s of states) {
    const changes = s.rosters.filter((u) => u.epoch > start.epoch);
    // The Remove and the Add may be committed together (one epoch, one banner) or apart
    // ("left", then the key change).
    const changed = changes.find((u) => u.credentialChanged?.includes(victim.id));
    assert.ok(changed, `${s.id} showed a key change for ${victim.id}: ${JSON.stringify(changes)} (from epoch `
      + `${start.epoch}; the impostor's epochs ${conn.epochs}; last updates ${JSON.stringify(s.rosters.slice(-3))})`);
    assert.match(changed.banner, new RegExp(`KEY CHANGED for ${victim.id}`));
    assert.notEqual(changed.code, start.code);
  }
  // The demo page shows such a banner in red (client/demo.js: credentialChanged -> warning).
  console.log(`# swap of ${victim.id.slice(-4)}: epochs ${start.epoch} -> ${states[0].epoch}; `
    + `banners: ${states[0].rosters.filter((u) => u.epoch > start.epoch).map((u) => `"${u.banner}"`).join(', ')}`);
});
