// End-to-end encryption through hisoka with the shipped client (client/hisoka.js,
// client/e2ee.js): members decode each other only with the right keys, a leaver's keys
// stop working, a joiner cannot read the past, and what the server forwards is
// ciphertext.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { SFrameReceiver } from '../../client/sframe.js';
import { serverAndBrowser, waitFor } from '../lib/browser.mjs';

const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-payloads-'));
let server;
let browser;
serverAndBrowser({ log_level: 'info', e2ee: true, debug_payload_directory: dumpDir },
  (s, b) => { server = s; browser = b; });

// One page running the shipped client with e2ee.
class Member {
  static async join(channel, setup = null) {
    const page = await browser.context.newPage();
    await page.goto(`${server.apiUrl}/health`);
    await page.addScriptTag({ path: new URL('./sora-page.js', import.meta.url).pathname });
    const m = new Member();
    m.page = page;
    m.id = await page.evaluate(async ({ url, channel, setup }) => {
      const { HisokaClient } = await import('/demo/hisoka.js');
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const client = new HisokaClient(url, { channelId: channel, e2ee: true });
      const state = { remote: {}, client };
      window.e2eeState = state;
      client.addEventListener('track', (e) => {
        state.remote[e.detail.mid] = { id: e.detail.connectionId, kind: e.detail.track.kind, track: e.detail.track };
        window.hisokaTest.play(e.detail.track);
      });
      client.addEventListener('closed', (e) => { state.closed = e.detail; });
      const id = await client.connect(stream);
      state.pc = client.pc;
      state.connectionId = id;
      if (setup && setup.marker) client.e2ee.debug.setMarker(setup.marker);
      if (setup && setup.nullCipher) client.e2ee.debug.setNullCipher(true);
      return id;
    }, { url: server.url, channel, setup });
    return m;
  }

  stats() { return this.page.evaluate(() => window.hisokaTest.stats(window.e2eeState)); }
  e2ee() { return this.page.evaluate(() => window.e2eeState.client.e2ee.stats()); }
  safety() { return this.page.evaluate(() => window.e2eeState.client.safetyNumber()); }

  // Keys this member received for others: [{connectionId, kid, baseKey: number[]}].
  heldKeys() {
    return this.page.evaluate(async () => (await window.e2eeState.client.e2ee.debug.heldKeys())
      .map((k) => ({ connectionId: k.connectionId, kid: Number(k.kid), baseKey: [...k.baseKey] })));
  }

  // The next n frames this member encrypts, as byte arrays.
  async capture(n) {
    await this.page.evaluate((count) => window.e2eeState.client.e2ee.debug.capture(count), n);
    await waitFor(async () => (await this.captured()).length >= n, 5000, 100);
    return this.captured();
  }

  captured() {
    return this.page.evaluate(async () => (await window.e2eeState.client.e2ee.debug.captured())
      .map((f) => [...f.bytes]));
  }

  async leave() {
    await this.page.evaluate(() => window.e2eeState.client.disconnect());
    await this.page.close();
  }
}

async function decodes(member, from, minFrames = 10) {
  return waitFor(async () => {
    const s = await member.stats();
    return from.every((id) => (s.remote[id]?.framesDecoded || 0) >= minFrames
      && (s.remote[id]?.totalSamplesReceived || 0) > 0);
  }, 15000);
}

// How many of frames decrypt with any of keys (with lazy ratcheting within a generation).
async function decryptable(frames, keys) {
  let ok = 0;
  for (const frame of frames) {
    for (const k of keys) {
      const receiver = new SFrameReceiver();
      await receiver.addKey(BigInt(k.kid), new Uint8Array(k.baseKey));
      try {
        await receiver.decryptFrame(new Uint8Array(frame));
        ok++;
        break;
      } catch {
        /* not with this key */
      }
    }
  }
  return ok;
}

test('(a) three E2EE members decode each other; safety numbers agree', async () => {
  const members = [];
  for (let i = 0; i < 3; i++) members.push(await Member.join('a'));
  const ids = members.map((m) => m.id);
  for (const m of members) {
    assert.ok(await decodes(m, ids.filter((id) => id !== m.id), 30),
      `${m.id} decodes the others: ${JSON.stringify((await m.stats()).remote)}`);
    const e = await m.e2ee();
    for (const id of ids.filter((x) => x !== m.id)) assert.ok(e[id].decrypted > 0);
    assert.ok(e.encrypted > 0);
  }
  // Everyone shows the same safety number for a member as that member shows itself.
  const own = await members[0].safety();
  const seen = await members[1].page.evaluate((id) => window.e2eeState.client.members.get(id).safetyNumber, members[0].id);
  assert.match(own, /^\d{5}( \d{5}){5}$/);
  assert.equal(seen, own);
  for (const m of members) await m.leave();
});

test('(b) a member with wrong keys decodes nothing and counts failures; the rest still decode', async () => {
  const a = await Member.join('b');
  const b = await Member.join('b');
  const c = await Member.join('b');
  for (const m of [a, b, c]) assert.ok(await decodes(m, [a, b, c].filter((x) => x !== m).map((x) => x.id)));
  await c.page.evaluate(() => window.e2eeState.client.e2ee.debug.corruptReceiveKeys());
  await new Promise((r) => setTimeout(r, 1000));
  const before = await c.stats();
  const failedBefore = await c.e2ee();
  const bBefore = await b.stats();
  await new Promise((r) => setTimeout(r, 4000));
  const after = await c.stats();
  const failedAfter = await c.e2ee();
  const bAfter = await b.stats();
  for (const id of [a.id, b.id]) {
    assert.equal(after.remote[id].framesDecoded - before.remote[id].framesDecoded, 0,
      `C decoded no frame of ${id} with the wrong keys`);
    assert.ok(failedAfter[id].failed > failedBefore[id].failed, `C counts failures for ${id}`);
  }
  assert.ok(bAfter.remote[a.id].framesDecoded - bBefore.remote[a.id].framesDecoded > 30,
    'B still decodes A');
  for (const m of [a, b, c]) await m.leave();
});

test('(c) after C leaves, frames A sends 6 s later do not decrypt with any key C held', async () => {
  const a = await Member.join('c');
  const b = await Member.join('c');
  const c = await Member.join('c');
  for (const m of [a, b, c]) assert.ok(await decodes(m, [a, b, c].filter((x) => x !== m).map((x) => x.id)));
  const cKeys = (await c.heldKeys()).filter((k) => k.connectionId === a.id);
  assert.ok(cKeys.length > 0, 'C held keys of A');
  assert.ok(await decryptable(await a.capture(5), cKeys) > 0, 'control: C could read A before');
  await c.leave();
  await new Promise((r) => setTimeout(r, 6000));
  const frames = await a.capture(30);
  assert.equal(await decryptable(frames, cKeys), 0, 'no frame decrypts with a key C held');
  const bKeys = (await b.heldKeys()).filter((k) => k.connectionId === a.id);
  assert.ok(await decryptable(frames, bKeys) > 0, 'control: B (still a member) reads them');
  assert.ok(await decodes(b, [a.id]));
  for (const m of [a, b]) await m.leave();
});

test('(d) a joiner cannot decrypt frames captured before it joined', async () => {
  const a = await Member.join('d');
  const b = await Member.join('d');
  assert.ok(await decodes(b, [a.id]));
  const before = await a.capture(30);
  const d = await Member.join('d');
  assert.ok(await decodes(d, [a.id, b.id]), 'the joiner decodes the others');
  const dKeys = (await d.heldKeys()).filter((k) => k.connectionId === a.id);
  assert.ok(dKeys.length > 0);
  assert.equal(await decryptable(before, dKeys), 0, 'no earlier frame decrypts for the joiner');
  const afterJoin = await a.capture(10);
  assert.ok(await decryptable(afterJoin, dKeys) > 0, 'control: later frames do');
  for (const m of [a, b, d]) await m.leave();
});

test('(e) the server only ever sees ciphertext: a plaintext marker appears in no forwarded payload', async () => {
  const marker = 'HISOKA-PLAINTEXT-MARKER-7f3a';
  const a = await Member.join('e', { marker });
  const b = await Member.join('e', { marker });
  assert.ok(await decodes(a, [b.id], 60), 'decoding works with the marker stripped');
  assert.ok(await decodes(b, [a.id], 60));
  // Control: with the debug null cipher the same marker must show up, so the scan works.
  const x = await Member.join('e-control', { marker, nullCipher: true });
  const y = await Member.join('e-control', { marker, nullCipher: true });
  await waitFor(async () => ((await y.stats()).remote[x.id]?.framesDecoded || 0) > 10, 15000);
  for (const m of [a, b, x, y]) await m.leave();
  const needle = Buffer.from(marker);
  const scan = (ids) => fs.readdirSync(dumpDir).filter((f) => ids.some((id) => f.startsWith(id)))
    .map((f) => ({ f, size: fs.statSync(path.join(dumpDir, f)).size,
      hits: fs.readFileSync(path.join(dumpDir, f)).includes(needle) }));
  const e2ee = scan([a.id, b.id]);
  const control = scan([x.id, y.id]);
  const total = e2ee.reduce((n, f) => n + f.size, 0);
  console.log(`# scanned ${total} bytes of E2EE payloads in ${e2ee.length} files`);
  assert.ok(e2ee.length >= 4 && total > 100000, 'the server forwarded (and dumped) media');
  assert.deepEqual(e2ee.filter((f) => f.hits), [], 'no E2EE payload contains the marker');
  assert.ok(control.some((f) => f.hits), 'control: unencrypted payloads do contain it');
  fs.rmSync(dumpDir, { recursive: true, force: true });
});
