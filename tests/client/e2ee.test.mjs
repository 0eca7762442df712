// Tests for client/e2ee.js and the worker core (client/e2ee-frames.js) in Node:
// E2EE instances talk to an in-process stand-in for e2ee-worker.js and to each
// other through a fake key-message relay. Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameCrypto } from '../../client/e2ee-frames.js';
import { FakeWorker } from './fake-worker.mjs';
import { E2EE, ssrcOwnersOfSdp } from '../../client/e2ee.js';
import { decodeKeyMessage, encodeKeyMessage } from '../../client/keys.js';
import { decodeHeader, splitKid, makeKid } from '../../client/sframe.js';

const IDS = {
  A: 'AAAAAAAAAAAAAAAAAAAAAAAAAA',
  B: 'BBBBBBBBBBBBBBBBBBBBBBBBBB',
  C: 'CCCCCCCCCCCCCCCCCCCCCCCCCC',
  D: 'DDDDDDDDDDDDDDDDDDDDDDDDDD',
};
const utf8 = new TextEncoder();

// A room: relays key messages like the server would (checks src, dst).
function makeRoom() {
  const peers = new Map();
  const inflight = new Set();
  const log = [];
  const room = {
    peers,
    log,
    async join(name) {
      const worker = new FakeWorker();
      const id = IDS[name];
      const e2ee = await E2EE.create({
        worker,
        switchDelayMs: 30,
        sendKeyMessage: (dst, bytes) => {
          const m = decodeKeyMessage(bytes);
          assert.equal(m.srcId, id);
          assert.equal(m.dstId, dst);
          log.push({ src: id, dst });
          const target = peers.get(dst);
          if (!target) return;
          const copy = Uint8Array.from(bytes).buffer; // as a WebSocket would deliver it
          const p = target.e2ee.onKeyMessage(copy).finally(() => inflight.delete(p));
          inflight.add(p);
        },
      });
      e2ee.setSelf(id);
      const peer = { name, id, e2ee, core: worker.core, worker };
      // existing members, as listed in our connection.created
      for (const other of peers.values()) await e2ee.addMember(other.id, other.e2ee.publicKeyBase64, { joinedNow: false });
      peers.set(id, peer);
      // everybody else learns of the joiner
      for (const other of peers.values()) if (other !== peer) await other.e2ee.addMember(id, e2ee.publicKeyBase64, { joinedNow: true });
      await room.settle();
      return peer;
    },
    async leave(name) {
      const id = IDS[name];
      const peer = peers.get(id);
      peers.delete(id);
      await Promise.all([...peers.values()].map((p) => p.e2ee.removeMember(id)));
      await room.settle();
      return peer;
    },
    async settle() {
      while (inflight.size) await Promise.allSettled([...inflight]);
    },
  };
  return room;
}

const frame = (n = 100, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function sendAndReceive(from, to, pt = frame()) {
  const wire = await from.core.encodeFrame(pt);
  assert.ok(wire, 'sender produced a frame');
  return { wire, out: await to.core.decodeFrame(wire, from.id) };
}

test('two members exchange keys and frames both ways; the joiner gets a ratcheted key', async () => {
  const room = makeRoom();
  const a = await room.join('A');
  const b = await room.join('B');
  const ab = await sendAndReceive(a, b);
  assert.deepEqual(ab.out, frame());
  const ba = await sendAndReceive(b, a, frame(50, 9));
  assert.deepEqual(ba.out, frame(50, 9));
  // A ratcheted once for B; B is at step 0
  assert.deepEqual(splitKid(decodeHeader(ab.wire).kid), { senderIndex: a.e2ee.senderIndex, generation: 0, step: 1 });
  assert.deepEqual(splitKid(decodeHeader(ba.wire).kid), { senderIndex: b.e2ee.senderIndex, generation: 0, step: 0 });
  // the wire does not carry the plaintext
  assert.ok(!Buffer.from(ab.wire).includes(Buffer.from(frame())));
  const sb = await b.e2ee.stats();
  assert.deepEqual(sb[a.id], { decrypted: 1, failed: 0, missing: 0 });
  assert.equal(sb.encrypted, 1);
  assert.equal(a.e2ee.safetyNumber(b.e2ee.publicKeyBase64), b.e2ee.mySafetyNumber);
});

test('third joiner: old members ratchet lazily, the joiner cannot read older frames', async () => {
  const room = makeRoom();
  const a = await room.join('A');
  const b = await room.join('B');
  const before = await a.core.encodeFrame(frame(20, 3)); // step 1, before C
  const c = await room.join('C');
  // A sent C exactly one key message for this join, B none to A
  const toC = room.log.filter((l) => l.dst === c.id);
  assert.equal(toC.filter((l) => l.src === a.id).length, 1);
  // A is at step 2 now; B only holds step 1 of A and ratchets lazily
  const r = await sendAndReceive(a, b);
  assert.equal(splitKid(decodeHeader(r.wire).kid).step, 2);
  assert.deepEqual(r.out, frame());
  assert.deepEqual(await c.core.decodeFrame(r.wire, a.id), frame());
  // C cannot decrypt what A sent before C joined
  assert.equal(await c.core.decodeFrame(before, a.id), null);
  const sc = await c.e2ee.stats();
  assert.equal(sc[a.id].missing, 1);
  // B's and C's frames reach everybody
  for (const [s, d] of [[b, a], [b, c], [c, a], [c, b]]) {
    const x = await sendAndReceive(s, d, frame(33, 7));
    assert.deepEqual(x.out, frame(33, 7), `${s.name} -> ${d.name}`);
  }
});

test('leaver: fresh key for the rest, the leaver cannot decrypt new frames', async () => {
  const room = makeRoom();
  const a = await room.join('A');
  const b = await room.join('B');
  const c = await room.join('C');
  await room.leave('C');
  const r = await sendAndReceive(a, b);
  assert.deepEqual(r.out, frame());
  const k = splitKid(decodeHeader(r.wire).kid);
  assert.equal(k.generation, 1);
  assert.equal(k.step, 0);
  assert.equal(await c.core.decodeFrame(r.wire, a.id), null, 'C must not read A after leaving');
  const r2 = await sendAndReceive(b, a);
  assert.deepEqual(r2.out, frame());
  assert.equal(await c.core.decodeFrame(r2.wire, b.id), null, 'C must not read B after leaving');
  // B forgot C's keys
  assert.equal(b.e2ee.debug.heldKeys().filter((x) => x.connectionId === c.id).length, 0);
  // a join after a leave still works
  const d = await room.join('D');
  const r3 = await sendAndReceive(a, d);
  assert.deepEqual(r3.out, frame());
  assert.deepEqual(splitKid(decodeHeader(r3.wire).kid), { senderIndex: a.e2ee.senderIndex, generation: 1, step: 1 });
  assert.deepEqual((await sendAndReceive(a, b)).out, frame());
});

test('key messages: wrong destination, unknown source (kept until known), tampering', async () => {
  const sent = [];
  const mk = async (id) => {
    const worker = new FakeWorker();
    const e = await E2EE.create({ worker, switchDelayMs: 10, sendKeyMessage: (dst, bytes) => sent.push({ dst, bytes }) });
    e.setSelf(id);
    return { e, core: worker.core, id };
  };
  const a = await mk(IDS.A);
  const b = await mk(IDS.B);
  await a.e.addMember(IDS.B, b.e.publicKeyBase64, { joinedNow: false });
  const msg = sent.pop().bytes;
  // B does not know A yet: kept, not installed
  assert.equal(await b.e.onKeyMessage(msg), false);
  assert.equal(b.e.debug.heldKeys().length, 0);
  await b.e.addMember(IDS.A, a.e.publicKeyBase64, { joinedNow: false });
  assert.equal(b.e.debug.heldKeys().length, 1);
  assert.equal(b.e.debug.heldKeys()[0].connectionId, IDS.A);
  const wire = await a.core.encodeFrame(frame());
  assert.deepEqual(await b.core.decodeFrame(wire, IDS.A), frame());
  // addressed to someone else
  const d = decodeKeyMessage(msg);
  assert.equal(await b.e.onKeyMessage(encodeKeyMessage(IDS.A, IDS.C, d.ciphertext)), false);
  // tampered
  const bad = Uint8Array.from(msg);
  bad[bad.length - 1] ^= 1;
  const before = b.e.keyMessagesRejected;
  assert.equal(await b.e.onKeyMessage(bad), false);
  assert.equal(b.e.keyMessagesRejected, before + 1);
  // garbage
  assert.equal(await b.e.onKeyMessage(new Uint8Array([1, 2, 3])), false);
  // a genuine one installs
  assert.equal(await b.e.onKeyMessage(msg), true);
});

test('a member cannot claim another member\'s sender index', async () => {
  const room = makeRoom();
  const a = await room.join('A');
  const b = await room.join('B');
  const c = await room.join('C');
  // C forges a key message for B claiming A's sender index
  const { wrapSenderKey, encodeSenderKey, publicKeyFromBase64 } = await import('../../client/keys.js');
  const payload = encodeSenderKey({ senderIndex: a.e2ee.senderIndex, generation: 9, step: 0, baseKey: new Uint8Array(16) });
  // C needs its own private key: reach into the instance (test only)
  const ct = await wrapSenderKey({
    myPrivateKey: c.e2ee._identity.privateKey,
    theirPublicKey: await publicKeyFromBase64(b.e2ee.publicKeyBase64),
    srcId: c.id,
    dstId: b.id,
    payload,
  });
  assert.equal(await b.e2ee.onKeyMessage(encodeKeyMessage(c.id, b.id, ct)), false);
  assert.deepEqual((await sendAndReceive(a, b)).out, frame());
});

test('debug: marker, null cipher, capture, heldKeys, corruptReceiveKeys', async () => {
  const room = makeRoom();
  const a = await room.join('A');
  const b = await room.join('B');
  const marker = 'HISOKA-E2EE-MARKER-1234';
  await a.e2ee.debug.setMarker(marker);
  await b.e2ee.debug.setMarker(marker);
  await a.e2ee.debug.capture(3);
  const pt = frame(64);
  let last;
  for (let i = 0; i < 5; i++) {
    last = await sendAndReceive(a, b, pt);
    assert.deepEqual(last.out, pt, 'marker stripped after decryption');
    assert.ok(!Buffer.from(last.wire).includes(Buffer.from(marker)), 'marker invisible on the wire');
  }
  const cap = await a.e2ee.debug.captured();
  assert.equal(cap.length, 3);
  assert.deepEqual(cap[2].bytes, last.wire);
  assert.equal(typeof cap[0].at, 'number');
  // null cipher: the marker shows up on the wire
  await a.e2ee.debug.setNullCipher(true);
  await b.e2ee.debug.setNullCipher(true);
  const nc = await sendAndReceive(a, b, pt);
  assert.ok(Buffer.from(nc.wire).includes(Buffer.from(marker)));
  assert.deepEqual(nc.out, pt);
  await a.e2ee.debug.setNullCipher(false);
  await b.e2ee.debug.setNullCipher(false);
  // held keys, then corruption makes every frame fail
  const held = b.e2ee.debug.heldKeys();
  assert.equal(held.length, 1);
  assert.equal(held[0].connectionId, a.id);
  assert.equal(splitKid(held[0].kid).senderIndex, a.e2ee.senderIndex);
  assert.ok(held[0].baseKey instanceof Uint8Array);
  await b.e2ee.debug.corruptReceiveKeys();
  assert.notDeepEqual(b.e2ee.debug.heldKeys()[0].baseKey, held[0].baseKey);
  assert.equal((await sendAndReceive(a, b, pt)).out, null);
  const s = await b.e2ee.stats();
  assert.equal(s[a.id].failed, 1);
  assert.equal(s[a.id].decrypted, 5);
  await a.e2ee.debug.setMarker(null);
});

test('a member that never got our key counts "missing"', async () => {
  const a = new FrameCrypto();
  const b = new FrameCrypto();
  const kid = Number(makeKid({ senderIndex: 4242, generation: 0, step: 0 }));
  await a.handleMessage({ type: 'set-send-key', kid, baseKey: new Uint8Array(16).fill(1) });
  const wire = await a.encodeFrame(frame());
  assert.equal(await b.decodeFrame(wire, IDS.A), null);
  assert.equal(await b.decodeFrame(new Uint8Array([0x88]), IDS.A), null); // not an SFrame frame
  const s = await b.handleMessage({ type: 'stats' });
  assert.deepEqual(s, { type: 'stats', stats: { [IDS.A]: { decrypted: 0, failed: 1, missing: 1 } }, encrypted: 0, dropped: 0 });
  // after the key arrives, frames decrypt and are counted under the key's owner
  await b.handleMessage({ type: 'add-receive-key', connectionId: IDS.B, kid, baseKey: new Uint8Array(16).fill(1) });
  assert.deepEqual(await b.decodeFrame(wire, null), frame());
  assert.equal((await b.handleMessage({ type: 'stats' })).stats[IDS.B].decrypted, 1);
  await b.handleMessage({ type: 'remove-sender', connectionId: IDS.B });
  assert.equal(await b.decodeFrame(wire, null), null);
});

test('sender without a key sends nothing (never media in clear)', async () => {
  const a = new FrameCrypto();
  assert.equal(await a.encodeFrame(frame()), null);
  assert.equal((await a.handleMessage({ type: 'nope' })).type, 'error');
});

test('transform stream: frames keep their objects, dropped frames are not enqueued', async () => {
  const a = new FrameCrypto();
  const b = new FrameCrypto();
  const kid = Number(makeKid({ senderIndex: 1, generation: 0, step: 0 }));
  const key = new Uint8Array(16).fill(3);
  await a.handleMessage({ type: 'set-send-key', kid, baseKey: key });
  await b.handleMessage({ type: 'add-receive-key', connectionId: IDS.A, kid, baseKey: key });
  const frames = [0, 1, 2, 3].map((i) => ({ type: 'delta', data: frame(10 + i, i).buffer, timestamp: i }));
  const sent = [];
  await new ReadableStream({ start(c) { frames.forEach((f) => c.enqueue(f)); c.close(); } })
    .pipeThrough(a.transformFor({ side: 'send' }))
    .pipeTo(new WritableStream({ write(f) { sent.push(f); } }));
  assert.equal(sent.length, 4);
  assert.ok(sent[0].data instanceof ArrayBuffer);
  assert.equal(sent[0].data.byteLength, 10 + 4 + 16); // header: config + 3-byte kid (0x010000); ctr 0 in config
  // corrupt frame 2 on the way
  new Uint8Array(sent[2].data)[sent[2].data.byteLength - 1] ^= 1;
  const got = [];
  await new ReadableStream({ start(c) { sent.forEach((f) => c.enqueue(f)); c.close(); } })
    .pipeThrough(b.transformFor({ side: 'receive', senderConnectionId: IDS.A }))
    .pipeTo(new WritableStream({ write(f) { got.push(f); } }));
  assert.deepEqual(got.map((f) => f.timestamp), [0, 1, 3]);
  assert.deepEqual(new Uint8Array(got[2].data), frame(13, 3));
  assert.deepEqual((await b.handleMessage({ type: 'stats' })).stats[IDS.A], { decrypted: 3, failed: 1, missing: 0 });
});

test('peerConnectionConfig and setupSender/setupReceiver pick the right path', async () => {
  const worker = new FakeWorker();
  const e = await E2EE.create({ worker, sendKeyMessage: () => {} });
  assert.equal(typeof globalThis.RTCRtpScriptTransform, 'undefined');
  assert.deepEqual(E2EE.peerConnectionConfig(), { encodedInsertableStreams: true });
  // legacy path
  const mkEnds = () => ({ createEncodedStreams: () => ({ readable: new ReadableStream(), writable: new WritableStream() }) });
  const legacySender = mkEnds();
  e.setupSender(legacySender, 'video');
  e.setupSender(legacySender, 'video'); // once only
  e.setupReceiver({ ...mkEnds(), track: { kind: 'audio' } }, IDS.B);
  assert.equal(worker.legacy.length, 2);
  assert.deepEqual(worker.legacy[0].options, { side: 'send', kind: 'video' });
  assert.deepEqual(worker.legacy[1].options, { side: 'receive', senderConnectionId: IDS.B, kind: 'audio' });
  // script transform path
  globalThis.RTCRtpScriptTransform = class {
    constructor(w, options) {
      this.worker = w;
      this.options = options;
    }
  };
  try {
    assert.deepEqual(E2EE.peerConnectionConfig(), {});
    const s = { track: { kind: 'audio' } };
    const r = { track: { kind: 'video' } };
    e.setupSender(s);
    e.setupReceiver(r, IDS.C);
    assert.equal(s.transform.worker, worker);
    assert.deepEqual(s.transform.options, { side: 'send', kind: 'audio' });
    assert.deepEqual(r.transform.options, { side: 'receive', senderConnectionId: IDS.C, kind: 'video' });
  } finally {
    delete globalThis.RTCRtpScriptTransform;
  }
});

test('describeStreams: payload types and SSRC owners from the SDP; receivers without a sender are attributed by SSRC', async () => {
  const sdp = [
    'v=0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=rtpmap:111 opus/48000/2',
    `a=msid:${IDS.A} t1`, `a=ssrc:1111 cname:${IDS.A}`, `a=ssrc:1111 msid:${IDS.A} t1`,
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000',
    'a=ssrc-group:FID 2222 3333', `a=ssrc:2222 msid:${IDS.A} t2`, `a=ssrc:3333 msid:${IDS.A} t2`, '',
  ].join('\r\n');
  assert.deepEqual(ssrcOwnersOfSdp(sdp), { 1111: IDS.A, 2222: IDS.A, 3333: IDS.A });
  const worker = new FakeWorker();
  const e = await E2EE.create({ worker, sendKeyMessage: () => {} });
  await e.describeStreams(sdp);
  assert.equal(worker.core.payloadTypes.get(96), 'vp8');
  assert.equal(worker.core.ssrcOwners.get(2222), IDS.A);
  // A frame from an unknown key on a receiver set up without a sender: counted under
  // the connection that owns its SSRC.
  const got = [];
  const f = { data: frame(40).buffer, getMetadata: () => ({ mimeType: 'video/VP8', synchronizationSource: 2222 }) };
  await new ReadableStream({ start(c) { c.enqueue(f); c.close(); } })
    .pipeThrough(worker.core.transformFor({ side: 'receive', kind: 'video' }))
    .pipeTo(new WritableStream({ write(x) { got.push(x); } }));
  assert.equal(got.length, 0);
  const s = await e.stats();
  assert.equal(s[IDS.A].failed + s[IDS.A].missing, 1);
});

test('key frame requests: when a missing key arrives, and on request', async () => {
  const a = new FrameCrypto();
  const b = new FrameCrypto();
  const kid = Number(makeKid({ senderIndex: 7, generation: 0, step: 0 }));
  const key = new Uint8Array(16).fill(5);
  await a.handleMessage({ type: 'set-send-key', kid, baseKey: key });
  const requests = { video: 0, audio: 0 };
  const transformer = (kind) => ({ sendKeyFrameRequest: async () => { requests[kind]++; } });
  const feed = async (kind, n) => {
    const wire = await a.encodeFrame(frame(30), kind === 'audio' ? 'opus' : 'vp8');
    const metadata = { mimeType: kind === 'audio' ? 'audio/opus' : 'video/VP8' };
    const frames = Array.from({ length: n }, () => ({ data: Uint8Array.from(wire).buffer, getMetadata: () => metadata }));
    const out = [];
    await new ReadableStream({ start(c) { frames.forEach((f) => c.enqueue(f)); c.close(); } })
      .pipeThrough(b.transformFor({ side: 'receive', kind, senderConnectionId: IDS.A }, transformer(kind)))
      .pipeTo(new WritableStream({ write(f) { out.push(f); } }));
    return out.length;
  };
  // Keep the transforms registered (a finished stream unregisters itself).
  const keepOpen = (kind) => {
    let ctl;
    const rs = new ReadableStream({ start(c) { ctl = c; } });
    rs.pipeThrough(b.transformFor({ side: 'receive', kind, senderConnectionId: IDS.A }, transformer(kind)))
      .pipeTo(new WritableStream());
    return ctl;
  };
  const video = keepOpen('video');
  const audio = keepOpen('audio');
  const wire = await a.encodeFrame(frame(30), 'vp8');
  video.enqueue({ data: Uint8Array.from(wire).buffer });
  audio.enqueue({ data: Uint8Array.from(await a.encodeFrame(frame(30), 'opus')).buffer });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal((await b.handleMessage({ type: 'stats' })).stats[IDS.A].missing, 2);
  await b.handleMessage({ type: 'add-receive-key', connectionId: IDS.A, kid, baseKey: key });
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(requests, { video: 1, audio: 0 }, 'one request, from the video transform that missed the key');
  await b.handleMessage({ type: 'add-receive-key', connectionId: IDS.A, kid, baseKey: key });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(requests.video, 1, 'no new request without new missing frames');
  assert.deepEqual(await b.handleMessage({ type: 'request-key-frames' }), { type: 'key-frames-requested', count: 1 });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(requests.video, 2);
  video.close();
  audio.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.keyFrameSources.size, 0, 'closed transforms are forgotten');
  assert.equal(await feed('video', 2), 2, 'frames decrypt now');
});
