// End-to-end encryption through hisoka with the shipped client (client/hisoka.js,
// client/e2ee.js): members decode each other only with the right keys, a leaver's keys
// stop working, a joiner cannot read the past, and what the server forwards is
// ciphertext beyond each frame's clear codec header (docs/protocol.md §4.4).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { SFrameReceiver, decodeHeader, splitKid } from '../../client/sframe.js';
import { splitFrame } from '../../client/frame-format.js';
import { serverAndBrowser, waitFor } from '../lib/browser.mjs';

const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-payloads-'));
let server;
let browser;
serverAndBrowser({ log_level: 'info', e2ee: true, debug_payload_directory: dumpDir },
  (s, b) => { server = s; browser = b; });
after(() => fs.rmSync(dumpDir, { recursive: true, force: true }));

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
      const client = new HisokaClient(url, { channelId: channel, e2ee: true,
        ...(setup && setup.videoCodecType ? { videoCodecType: setup.videoCodecType } : {}) });
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

  // The next n frames this member encrypts, as [{bytes: number[], codec}].
  async capture(n) {
    await this.page.evaluate((count) => window.e2eeState.client.e2ee.debug.capture(count), n);
    await waitFor(async () => (await this.captured()).length >= n, 5000, 100);
    return this.captured();
  }

  captured() {
    return this.page.evaluate(async () => (await window.e2eeState.client.e2ee.debug.captured())
      .map((f) => ({ bytes: [...f.bytes], codec: f.codec })));
  }

  // The next n frames this member sends: [{bytes, plaintext, codec, clear}] (Buffers).
  // meanwhile: called once the capture runs.
  async captureWithPlaintext(n, meanwhile = async () => {}) {
    await this.page.evaluate((count) => window.e2eeState.client.e2ee.debug.capture(count, { plaintext: true }), n);
    await meanwhile();
    await waitFor(async () => (await this.page.evaluate(async () =>
      (await window.e2eeState.client.e2ee.debug.captured()).length)) >= n, 15000, 200);
    const frames = await this.page.evaluate(async () => (await window.e2eeState.client.e2ee.debug.captured())
      .map((f) => ({ bytes: [...f.bytes], plaintext: [...f.plaintext], codec: f.codec, clear: f.clear })));
    return frames.map((f) => ({ ...f, bytes: Buffer.from(f.bytes), plaintext: Buffer.from(f.plaintext) }));
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
    const { prefix, sframe } = splitFrame(frame.codec, Uint8Array.from(frame.bytes));
    for (const k of keys) {
      const receiver = new SFrameReceiver();
      await receiver.addKey(BigInt(k.kid), new Uint8Array(k.baseKey));
      try {
        await receiver.decryptFrame(sframe, prefix);
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

// The member asks every sender for a key frame, twice, a second apart (one request
// can meet a key frame just sent and be ignored).
async function askForKeyFrames(member) {
  for (let i = 0; i < 2; i++) {
    await member.page.evaluate(() => window.e2eeState.client.e2ee.requestKeyFrames());
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// Indexes every 16-byte window of the given buffers (step 4, so a run of 19 or more
// plaintext bytes cannot hide between windows) by its first 4 bytes. Windows with
// fewer than 4 distinct byte values are left out: filler like 00 00 00 ... proves
// nothing.
const WINDOW = 16;
function plaintextWindows(buffers) {
  const index = new Map();
  let count = 0;
  for (const b of buffers) {
    for (let i = 0; i + WINDOW <= b.length; i += 4) {
      const w = b.subarray(i, i + WINDOW);
      if (new Set(w).size < 4) continue;
      const key = w.readUInt32LE(0);
      if (!index.has(key)) index.set(key, []);
      index.get(key).push(w);
      count++;
    }
  }
  return { index, count };
}

// How many of the windows occur anywhere in `dump`.
function windowsFoundIn(dump, { index }) {
  const found = new Set();
  for (let i = 0; i + WINDOW <= dump.length; i++) {
    const list = index.get(dump.readUInt32LE(i));
    if (!list) continue;
    for (const w of list) if (!found.has(w) && dump.compare(w, 0, WINDOW, i, i + WINDOW) === 0) found.add(w);
  }
  return found.size;
}

test('(e) the server sees each frame\'s clear codec header and ciphertext, no other plaintext', async () => {
  const marker = 'HISOKA-PLAINTEXT-MARKER-7f3a';
  const a = await Member.join('e', { marker });
  const b = await Member.join('e', { marker });
  assert.ok(await decodes(a, [b.id], 60), 'decoding works with the marker stripped');
  assert.ok(await decodes(b, [a.id], 60));
  // About 3 s of audio and video, with key frames B asks for.
  const sent = await a.captureWithPlaintext(200, () => askForKeyFrames(b));
  // Control: with the debug null cipher the same scans must find plaintext.
  const x = await Member.join('e-control', { marker, nullCipher: true });
  const y = await Member.join('e-control', { marker, nullCipher: true });
  await waitFor(async () => ((await y.stats()).remote[x.id]?.framesDecoded || 0) > 10, 15000);
  const sentInClear = await x.captureWithPlaintext(150);
  const senderIndex = await a.page.evaluate(() => window.e2eeState.client.e2ee.senderIndex);
  for (const m of [a, b, x, y]) await m.leave();
  const dumpOf = (id) => Buffer.concat(fs.readdirSync(dumpDir).filter((f) => f.startsWith(id))
    .map((f) => fs.readFileSync(path.join(dumpDir, f))));
  const dumpA = dumpOf(a.id);
  const dumpX = dumpOf(x.id);
  const scan = (ids) => fs.readdirSync(dumpDir).filter((f) => ids.some((id) => f.startsWith(id)))
    .map((f) => ({ f, size: fs.statSync(path.join(dumpDir, f)).size,
      hits: fs.readFileSync(path.join(dumpDir, f)).includes(Buffer.from(marker)) }));
  const e2ee = scan([a.id, b.id]);
  const total = e2ee.reduce((n, f) => n + f.size, 0);
  console.log(`# scanned ${total} bytes of E2EE payloads in ${e2ee.length} files`);
  assert.ok(e2ee.length >= 4 && total > 100000, 'the server forwarded (and dumped) media');
  assert.deepEqual(e2ee.filter((f) => f.hits), [], 'no E2EE payload contains the marker');
  assert.ok(scan([x.id, y.id]).some((f) => f.hits), 'control: unencrypted payloads do contain it');

  // Each frame A sent: the codec header in clear, exactly (VP8 10 bytes on key frames,
  // 3 on delta frames, Opus 1), then an SFrame with A's key id; and the server got it.
  const kinds = { vp8: 0, opus: 0, vp8Key: 0 };
  for (const f of sent) {
    const expected = f.codec === 'opus' ? 1 : (f.plaintext[0] & 1) === 0 ? 10 : 3;
    assert.ok(f.codec === 'vp8' || f.codec === 'opus', `codec ${f.codec}`);
    assert.equal(f.clear, expected, `${f.codec} frame: clear prefix length`);
    kinds[f.codec]++;
    if (f.codec === 'vp8' && expected === 10) kinds.vp8Key++;
    assert.deepEqual(f.bytes.subarray(0, f.clear), f.plaintext.subarray(0, f.clear), 'the prefix is the codec header');
    const { sframe } = splitFrame(f.codec, f.bytes);
    assert.equal(splitKid(decodeHeader(sframe).kid).senderIndex, senderIndex, 'then an SFrame with A\'s key');
    assert.ok(dumpA.includes(f.bytes.subarray(0, Math.min(f.bytes.length, 24))), 'the server got the frame');
  }
  console.log(`# ${sent.length} frames of A checked: ${kinds.opus} Opus, ${kinds.vp8} VP8 (${kinds.vp8Key} key frames)`);
  assert.ok(kinds.opus > 20 && kinds.vp8 > 20 && kinds.vp8Key > 0, 'audio, video and key frames');

  // No 16-byte run of any frame's plaintext after its clear prefix reaches the server.
  const secret = plaintextWindows(sent.map((f) => f.plaintext.subarray(f.clear)));
  const leaked = windowsFoundIn(dumpA, secret);
  const control = plaintextWindows(sentInClear.map((f) => f.plaintext.subarray(f.clear)));
  const visible = windowsFoundIn(dumpX, control);
  console.log(`# plaintext windows after the clear prefix found in the dumps: E2EE ${leaked} of ` +
    `${secret.count}, control (null cipher) ${visible} of ${control.count}`);
  assert.ok(secret.count > 1000, 'enough plaintext to look for');
  assert.equal(leaked, 0, 'no plaintext beyond the clear prefix in what the server forwarded');
  assert.ok(visible > 0.8 * control.count, 'control: the scan finds plaintext sent in clear');
});

test('(f) H.264 under E2EE: decodes; clear up to the first slice\'s PPS id, no other plaintext', async () => {
  const a = await Member.join('f', { videoCodecType: 'H264' });
  const b = await Member.join('f', { videoCodecType: 'H264' });
  assert.ok(await decodes(a, [b.id], 60), 'A decodes B');
  assert.ok(await decodes(b, [a.id], 60), 'B decodes A');
  const sent = await a.captureWithPlaintext(200, () => askForKeyFrames(b));
  const after = await b.stats();
  for (const m of [a, b]) await m.leave();
  const video = sent.filter((f) => f.codec === 'h264');
  const keyFrames = video.filter((f) => f.plaintext.includes(Buffer.from([0, 0, 1, 0x67])));
  console.log(`# ${video.length} H.264 frames of A checked (${keyFrames.length} with SPS), ` +
    `clear prefixes ${[...new Set(video.map((f) => f.clear))].join(', ')} bytes`);
  assert.ok(video.length > 20 && keyFrames.length > 0, 'H.264 frames were sent, a key frame among them');
  assert.ok(after.remote[a.id].frameWidth > 0);
  for (const f of video) {
    assert.deepEqual(f.bytes.subarray(0, f.clear), f.plaintext.subarray(0, f.clear));
    // Annex B start codes only in the clear part: the escaped SFrame has none.
    const rest = f.bytes.subarray(f.clear - 2);
    for (let i = 0; i + 2 < rest.length; i++) {
      assert.ok(!(rest[i] === 0 && rest[i + 1] === 0 && rest[i + 2] <= 2), 'no start code after the prefix');
    }
  }
  const secret = plaintextWindows(video.map((f) => f.plaintext.subarray(f.clear)));
  const leaked = windowsFoundIn(Buffer.concat(fs.readdirSync(dumpDir).filter((f) => f.startsWith(a.id))
    .map((f) => fs.readFileSync(path.join(dumpDir, f)))), secret);
  assert.ok(secret.count > 1000);
  assert.equal(leaked, 0, 'no H.264 plaintext beyond the clear prefix reached the server');
});
