// Unit tests for client/sframe-mls.js and the KID / verification-code helpers of
// client/mls.js. Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MlsFrameKeys } from '../../client/sframe-mls.js';
import { mlsKid, splitMlsKid, verificationCode, encodeEnvelope, decodeEnvelope, T } from '../../client/mls.js';
import { decodeHeader } from '../../client/sframe.js';

const key = (b) => new Uint8Array(16).fill(b);

function pair(epoch = 5n, { clock } = {}) {
  const now = clock || (() => 0);
  const alice = new MlsFrameKeys({ now });
  const bob = new MlsFrameKeys({ now });
  alice.setEpoch({ epoch, baseKey: key(1), leafIndex: 0 });
  bob.setEpoch({ epoch, baseKey: key(1), leafIndex: 1 });
  return { alice, bob };
}

test('KID per RFC 9605 §5.2: leaf index above 8 epoch bits', () => {
  assert.equal(mlsKid(0, 0n), 0n);
  assert.equal(mlsKid(1, 2n), 0x102n);
  assert.equal(mlsKid(3, 0x1ffn), 0x3ffn); // epoch mod 256
  assert.deepEqual(splitMlsKid(0x3ffn), { leafIndex: 3, epochBits: 0xff });
});

test('verification code: 6 groups of 5 digits from 30 bytes, DAVE style', () => {
  const a = new Uint8Array(32);
  assert.equal(verificationCode(a), '00000 00000 00000 00000 00000 00000');
  a[4] = 1; // first chunk = 1
  a.fill(0xff, 5, 10); // second chunk = 2^40-1 = 1099511627775 -> 27775
  assert.equal(verificationCode(a), '00001 27775 00000 00000 00000 00000');
  assert.throws(() => verificationCode(new Uint8Array(29)));
});

test('envelope: header layout and refusals', () => {
  const e = encodeEnvelope(T.COMMIT_REFUSED, 258n, Uint8Array.of(1));
  assert.deepEqual([...e], [0x17, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1]);
  assert.equal(decodeEnvelope(e).epoch, 258n);
  assert.throws(() => decodeEnvelope(e.subarray(0, 14)), /length/);
  assert.throws(() => decodeEnvelope(Uint8Array.of(2, ...e.subarray(1))), /type/);
});

test('frames decrypt on the sender’s own track only', async () => {
  const { alice, bob } = pair();
  const frame = await alice.encrypt(Uint8Array.of(1, 2, 3), Uint8Array.of(9));
  assert.equal(splitMlsKid(decodeHeader(frame).kid).leafIndex, 0);
  assert.deepEqual(await bob.decrypt(frame, Uint8Array.of(9), 0), Uint8Array.of(1, 2, 3));
  // The same frame moved onto leaf 2's track: dropped, counted.
  await assert.rejects(bob.decrypt(frame, Uint8Array.of(9), 2), { code: 'wrong-sender' });
  assert.equal(bob.stats.wrongSender, 1);
  // Changed metadata (the clear codec header): authentication fails.
  const f2 = await alice.encrypt(Uint8Array.of(4));
  await assert.rejects(bob.decrypt(f2, Uint8Array.of(8), 0), { code: 'auth' });
});

test('replay window per sender: repeats and too-old counters are dropped', async () => {
  const { alice, bob } = pair();
  const frames = [];
  for (let i = 0; i < 200; i++) frames.push(await alice.encrypt(Uint8Array.of(i)));
  await bob.decrypt(frames[5], undefined, 0);
  await assert.rejects(bob.decrypt(frames[5], undefined, 0), { code: 'replay' });
  await bob.decrypt(frames[3], undefined, 0); // late but new: accepted
  await assert.rejects(bob.decrypt(frames[3], undefined, 0), { code: 'replay' });
  await bob.decrypt(frames[199], undefined, 0);
  await assert.rejects(bob.decrypt(frames[60], undefined, 0), { code: 'replay' }); // 139 behind
  await bob.decrypt(frames[100], undefined, 0); // 99 behind: inside the window
  assert.equal(bob.stats.replayed, 3);
  assert.equal(bob.stats.decrypted, 4);
  // A forged frame with a fresh counter does not move the window.
  const forged = Uint8Array.from(frames[198]);
  forged[forged.length - 1] ^= 1;
  await assert.rejects(bob.decrypt(forged, undefined, 0), { code: 'auth' });
  await bob.decrypt(frames[198], undefined, 0);
});

test('old epoch kept for oldEpochMs, then dropped; a new epoch has new keys', async () => {
  let t = 0;
  const clock = () => t;
  const { alice, bob } = pair(5n, { clock });
  const old = await alice.encrypt(Uint8Array.of(1));
  const old2 = await alice.encrypt(Uint8Array.of(2));
  alice.setEpoch({ epoch: 6n, baseKey: key(2), leafIndex: 0 });
  bob.setEpoch({ epoch: 6n, baseKey: key(2), leafIndex: 1 });
  const fresh = await alice.encrypt(Uint8Array.of(3));
  assert.equal(decodeHeader(fresh).ctr, 0n);
  assert.deepEqual(await bob.decrypt(fresh, undefined, 0), Uint8Array.of(3));
  t = 4999;
  assert.deepEqual(await bob.decrypt(old, undefined, 0), Uint8Array.of(1));
  t = 5000;
  await assert.rejects(bob.decrypt(old2, undefined, 0), { code: 'unknown-key' });
  // A receiver that never had epoch 5 (a joiner) cannot read frames sent before it joined.
  const joiner = new MlsFrameKeys();
  joiner.setEpoch({ epoch: 6n, baseKey: key(2), leafIndex: 2 });
  await assert.rejects(joiner.decrypt(old, undefined, 0), { code: 'unknown-key' });
  assert.throws(() => bob.setEpoch({ epoch: 6n, baseKey: key(3), leafIndex: 1 }), /forward/);
});

test('RosterWatch: joins, leaves and a changed credential, from the group state', async () => {
  const { RosterWatch } = await import('../../client/mls-roster.js');
  const w = new RosterWatch({ self: 'A' });
  const r = (id, key) => ({ identity: id, signatureKey: key, leafIndex: 0 });
  let u = w.update({ epoch: 3n, roster: [r('A', 'ka'), r('B', 'kb')], code: 'c3' });
  assert.deepEqual(u.added, ['B']);
  assert.equal(u.banner, 'in the group: B — verification code now c3');
  u = w.update({ epoch: 4n, roster: [r('A', 'ka'), r('B', 'kb'), r('G', 'kg')], code: 'c4' });
  assert.deepEqual(u.added, ['G']);
  u = w.update({ epoch: 5n, roster: [r('A', 'ka'), r('B', 'kb')], code: 'c5' });
  assert.deepEqual(u.removed, ['G']);
  assert.equal(u.banner, 'left: G — verification code now c5');
  u = w.update({ epoch: 6n, roster: [r('A', 'ka'), r('B', 'kX')], code: 'c6' });
  assert.deepEqual(u.credentialChanged, ['B']);
  assert.match(u.banner, /^KEY CHANGED for B/);
  assert.equal(w.update({ epoch: 7n, roster: [r('A', 'ka'), r('B', 'kX')], code: 'c7' }).banner, null);
  u = w.update({ epoch: 8n, roster: [r('A', 'ka'), r('B', 'kX'), r('B', 'kX')], code: 'c8' });
  assert.deepEqual(u.duplicates, ['B']);
  assert.match(u.banner, /^SAME NAME ON SEVERAL MEMBERS: B/);
});

test('FrameCrypto in MLS mode: frames from the named sender only, replays dropped, round 1 untouched', async () => {
  const { FrameCrypto } = await import('../../client/e2ee-frames.js');
  const a = new FrameCrypto();
  const b = new FrameCrypto();
  const leaves = { A: 0, B: 1, C: 2 };
  await a.handleMessage({ type: 'mls-epoch', epoch: 1, baseKey: key(7), leafIndex: 0, leaves });
  await b.handleMessage({ type: 'mls-epoch', epoch: 1, baseKey: key(7), leafIndex: 1, leaves });
  const frame = Uint8Array.of(0x11, 1, 2, 3, 4, 5); // a VP8 delta frame (P bit set): 3 bytes in clear
  const wire = await a.encodeFrame(frame, 'vp8');
  assert.deepEqual(wire.subarray(0, 3), frame.subarray(0, 3));
  assert.deepEqual(await b.decodeFrame(wire, 'A', 'vp8'), frame);
  assert.equal(await b.decodeFrame(wire, 'A', 'vp8'), null, 'replayed');
  assert.equal(await b.decodeFrame(await a.encodeFrame(frame, 'vp8'), 'C', 'vp8'), null, 'moved to C');
  assert.equal(await b.decodeFrame(await a.encodeFrame(frame, 'vp8'), 'Z', 'vp8'), null, 'not in the group');
  const stats = await b.handleMessage({ type: 'stats' });
  assert.equal(stats.mls.replayed, 1);
  assert.equal(stats.mls.wrongSender, 1);
  assert.equal(stats.stats.A.decrypted, 1);
  // Without 'mls-epoch' the round-1 path is used, as before.
  const r1 = new FrameCrypto();
  assert.equal(r1.mls, null);
  assert.equal(await r1.encodeFrame(frame, 'vp8'), null, 'no key: nothing sent in clear');
});
