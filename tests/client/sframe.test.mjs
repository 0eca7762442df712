// Unit tests for client/sframe.js — RFC 9605 Appendix C vectors and hisoka's
// sender/receiver helpers. Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  CIPHER_SUITE,
  encodeHeader,
  decodeHeader,
  derivationLabels,
  deriveKeyAndSalt,
  encrypt,
  decrypt,
  ratchet,
  makeKid,
  splitKid,
  SFrameSender,
  SFrameReceiver,
  MAX_RATCHET_AHEAD,
} from '../../client/sframe.js';

const h = (s) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b) => Buffer.from(b).toString('hex');

// RFC 9605 Appendix C.1 (a selection covering every form and every length).
const HEADER_VECTORS = [
  [0x0n, 0x0n, '00'],
  [0x0n, 0x1n, '01'],
  [0x0n, 0xffn, '08ff'],
  [0x0n, 0x100n, '090100'],
  [0x0n, 0xffffn, '09ffff'],
  [0x0n, 0x10000n, '0a010000'],
  [0x0n, 0xffffffn, '0affffff'],
  [0x0n, 0x1000000n, '0b01000000'],
  [0x0n, 0xffffffffn, '0bffffffff'],
  [0x0n, 0x100000000n, '0c0100000000'],
  [0x0n, 0x10000000000n, '0d010000000000'],
  [0x0n, 0x1000000000000n, '0e01000000000000'],
  [0x0n, 0x100000000000000n, '0f0100000000000000'],
  [0x0n, 0xffffffffffffffffn, '0fffffffffffffffff'],
  [0x1n, 0x0n, '10'],
  [0x1n, 0x1n, '11'],
  [0x1n, 0xffn, '18ff'],
  [0x1n, 0x100n, '190100'],
  [0x1n, 0xffffffffffffffffn, '1fffffffffffffffff'],
  [0xffn, 0x0n, '80ff'],
  [0xffn, 0x1n, '81ff'],
  [0xffn, 0xffn, '88ffff'],
  [0xffn, 0x100n, '89ff0100'],
  [0xffn, 0xffffn, '89ffffff'],
  [0xffn, 0xffffffffffffffffn, '8fffffffffffffffffff'],
  [0x100n, 0x0n, '900100'],
  [0x100n, 0x1n, '910100'],
  [0x100n, 0xffn, '980100ff'],
  [0x100n, 0x100n, '9901000100'],
  [0x100n, 0x100000000000000n, '9f01000100000000000000'],
  [0xffffn, 0x0n, '90ffff'],
  [0xffffn, 0x1000000n, '9bffff01000000'],
  [0x10000n, 0x0n, 'a0010000'],
  [0x10000n, 0xffn, 'a8010000ff'],
  [0x10000n, 0x10000n, 'aa010000010000'],
  [0xffffffn, 0x1n, 'a1ffffff'],
  [0xffffffn, 0xffffffffffffffffn, 'afffffffffffffffffffffff'],
  [0x1000000n, 0x0n, 'b001000000'],
  [0x1000000n, 0x1000000n, 'bb0100000001000000'],
  [0xffffffffn, 0x100n, 'b9ffffffff0100'],
  [0x100000000n, 0x0n, 'c00100000000'],
  [0x100000000n, 0xffffffffn, 'cb0100000000ffffffff'],
  [0xffffffffffn, 0x10000n, 'caffffffffff010000'],
  [0x10000000000n, 0xffn, 'd8010000000000ff'],
  [0xffffffffffffn, 0x100000000n, 'dcffffffffffff0100000000'],
  [0x1000000000000n, 0x0n, 'e001000000000000'],
  [0x1000000000000n, 0x1000000000000n, 'ee0100000000000001000000000000'],
  [0xffffffffffffffn, 0x10000000000n, 'edffffffffffffff010000000000'],
  [0x100000000000000n, 0x0n, 'f00100000000000000'],
  [0x100000000000000n, 0x100000000000000n, 'ff01000000000000000100000000000000'],
  [0x100000000000000n, 0xffffffffffffffffn, 'ff0100000000000000ffffffffffffffff'],
  [0xffffffffffffffffn, 0x0n, 'f0ffffffffffffffff'],
  [0xffffffffffffffffn, 0x1n, 'f1ffffffffffffffff'],
  [0xffffffffffffffffn, 0xffn, 'f8ffffffffffffffffff'],
  [0xffffffffffffffffn, 0x100000000000000n, 'ffffffffffffffffff0100000000000000'],
  [0xffffffffffffffffn, 0xffffffffffffffffn, 'ffffffffffffffffffffffffffffffffff'],
];

// RFC 9605 Appendix C.3, cipher_suite 0x0004.
const V = {
  kid: 0x123n,
  ctr: 0x4567n,
  baseKey: '000102030405060708090a0b0c0d0e0f',
  keyLabel: '534672616d6520312e30205365637265 74206b65792000000000000001230004',
  saltLabel: '534672616d6520312e30205365637265 742073616c7420000000000000012300 04',
  secret: 'd926952ca8b7ec4a95941d1ada3a5203 ceff8cceee34f574d23909eb314c40c0',
  sframeKey: 'd34f547f4ca4f9a7447006fe7fcbf768',
  sframeSalt: '75234edefe07819026751816',
  metadata: '4945544620534672616d65205747',
  pt: '64726166742d696574662d736672616d 652d656e63',
  ct: '9901234567b7412c2513a1b66dbb4884 1bbaf17f598751176ad847681a69c6d0 b091c07018ce4adb34eb',
};

test('RFC 9605 C.1: header encoding vectors', () => {
  for (const [kid, ctr, header] of HEADER_VECTORS) {
    assert.equal(hex(encodeHeader(kid, ctr)), header, `kid=${kid} ctr=${ctr}`);
  }
});

test('RFC 9605 C.1: header decoding vectors (with trailing payload)', () => {
  for (const [kid, ctr, header] of HEADER_VECTORS) {
    const bytes = h(header + 'deadbeef');
    const d = decodeHeader(bytes);
    assert.equal(d.kid, kid);
    assert.equal(d.ctr, ctr);
    assert.equal(d.length, header.length / 2);
  }
});

test('header: every kid/ctr length round-trips', () => {
  const values = [0n, 7n, 8n];
  for (let i = 1; i <= 8; i++) values.push((1n << BigInt(8 * i)) - 1n, 1n << BigInt(8 * (i - 1)));
  for (const k of values) for (const c of values) {
    const d = decodeHeader(encodeHeader(k, c));
    assert.equal(d.kid, k);
    assert.equal(d.ctr, c);
  }
});

test('header: refuses truncation and non-minimal encodings', () => {
  assert.throws(() => decodeHeader(new Uint8Array(0)));
  assert.throws(() => decodeHeader(h('08'))); // ctr byte missing
  assert.throws(() => decodeHeader(h('09ff'))); // 2-byte ctr, 1 present
  assert.throws(() => decodeHeader(h('90ff'))); // 2-byte kid, 1 present
  assert.throws(() => decodeHeader(h('f8ffffffffffffff'))); // kid 8 bytes, 7 present
  assert.throws(() => decodeHeader(h('0805'))); // ctr 5 must live in the config byte
  assert.throws(() => decodeHeader(h('800300'))); // kid 3 must live in the config byte
  assert.throws(() => decodeHeader(h('0900ff'))); // leading zero byte
  assert.throws(() => decodeHeader(h('9000ff00'))); // leading zero byte in kid
  assert.throws(() => encodeHeader(-1n, 0n));
  assert.throws(() => encodeHeader(1n << 64n, 0n));
});

test('RFC 9605 C.3 (0x0004): labels, key and salt', async () => {
  assert.equal(CIPHER_SUITE, 0x0004);
  const { keyLabel, saltLabel } = derivationLabels(V.kid);
  assert.equal(hex(keyLabel), hex(h(V.keyLabel)));
  assert.equal(hex(saltLabel), hex(h(V.saltLabel)));
  const ctx = await deriveKeyAndSalt(h(V.baseKey), V.kid);
  assert.equal(hex(ctx.keyBytes), V.sframeKey);
  assert.equal(hex(ctx.salt), V.sframeSalt);
  // sframe_secret = HKDF-Extract("", base_key), checked independently.
  const secret = createHmac('sha256', Buffer.alloc(32)).update(h(V.baseKey)).digest('hex');
  assert.equal(secret, hex(h(V.secret)));
});

test('RFC 9605 C.3 (0x0004): encrypt gives the RFC ciphertext, decrypt gives the plaintext', async () => {
  const ctx = await deriveKeyAndSalt(h(V.baseKey), V.kid);
  const ct = await encrypt(ctx, V.kid, V.ctr, h(V.pt), h(V.metadata));
  assert.equal(hex(ct), hex(h(V.ct)));
  const out = await decrypt(ctx, h(V.ct), h(V.metadata));
  assert.equal(out.kid, V.kid);
  assert.equal(out.ctr, V.ctr);
  assert.equal(hex(out.plaintext), hex(h(V.pt)));
});

test('round trip without metadata, empty and large frames', async () => {
  const ctx = await deriveKeyAndSalt(crypto.getRandomValues(new Uint8Array(16)), 0x12340102n);
  for (const n of [0, 1, 100, 200000]) {
    const pt = new Uint8Array(n).map((_, i) => i * 7);
    const f = await encrypt(ctx, 0x12340102n, BigInt(n), pt);
    const d = await decrypt(ctx, f);
    assert.deepEqual(d.plaintext, pt);
  }
});

test('tampering anywhere makes decrypt throw', async () => {
  const ctx = await deriveKeyAndSalt(h(V.baseKey), V.kid);
  const good = h(V.ct);
  for (let i = 0; i < good.length; i++) {
    const bad = Uint8Array.from(good);
    bad[i] ^= 0x01;
    await assert.rejects(decrypt(ctx, bad, h(V.metadata)), `byte ${i}`);
  }
  await assert.rejects(decrypt(ctx, good, h('00'))); // other metadata
  await assert.rejects(decrypt(ctx, good)); // metadata missing
  await assert.rejects(decrypt(ctx, good.subarray(0, 10), h(V.metadata))); // truncated
  const other = await deriveKeyAndSalt(h(V.baseKey), 0x124n); // same base key, other kid
  await assert.rejects(decrypt(other, good, h(V.metadata)));
});

// Independent HKDF (RFC 5869) with node:crypto HMAC.
function hkdfRef(ikm, info, length) {
  const prk = createHmac('sha256', Buffer.alloc(32)).update(ikm).digest();
  let t = Buffer.alloc(0);
  let okm = Buffer.alloc(0);
  for (let i = 1; okm.length < length; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, Buffer.from(info), Buffer.from([i])])).digest();
    okm = Buffer.concat([okm, t]);
  }
  return new Uint8Array(okm.subarray(0, length));
}

test('ratchet = HKDF-Expand(HKDF-Extract("", k), "SFrame 1.0 Ratchet", 32) (RFC 9605 §5.1)', async () => {
  const k0 = h(V.baseKey);
  const k1 = await ratchet(k0);
  assert.equal(k1.length, 32);
  assert.equal(hex(k1), hex(hkdfRef(k0, 'SFrame 1.0 Ratchet', 32)));
  const k2 = await ratchet(k1);
  assert.equal(hex(k2), hex(hkdfRef(k1, 'SFrame 1.0 Ratchet', 32)));
  assert.notEqual(hex(k1), hex(k2));
  // Key derivation accepts the 32-byte ratcheted keys and matches the reference.
  const ctx = await deriveKeyAndSalt(k1, 5n);
  const { keyLabel, saltLabel } = derivationLabels(5n);
  assert.equal(hex(ctx.keyBytes), hex(hkdfRef(k1, keyLabel, 16)));
  assert.equal(hex(ctx.salt), hex(hkdfRef(k1, saltLabel, 12)));
});

test('hisoka KID layout', () => {
  const kid = makeKid({ senderIndex: 0xabcd, generation: 0x12, step: 0x34 });
  assert.equal(kid, 0xabcd1234n);
  assert.deepEqual(splitKid(kid), { senderIndex: 0xabcd, generation: 0x12, step: 0x34 });
  assert.throws(() => makeKid({ senderIndex: 0x10000, generation: 0, step: 0 }));
  assert.throws(() => makeKid({ senderIndex: 0, generation: 256, step: 0 }));
  assert.throws(() => makeKid({ senderIndex: 0, generation: 0, step: -1 }));
  assert.throws(() => splitKid(1n << 32n));
});

test('SFrameSender/SFrameReceiver: counter increases, keys switch', async () => {
  const base = crypto.getRandomValues(new Uint8Array(16));
  const kid = makeKid({ senderIndex: 77, generation: 0, step: 0 });
  const s = new SFrameSender();
  await assert.rejects(s.encryptFrame(new Uint8Array(3)));
  await s.setKey(kid, base);
  const r = new SFrameReceiver();
  await r.addKey(kid, base);
  for (let i = 0; i < 5; i++) {
    const f = await s.encryptFrame(Uint8Array.of(i, i, i));
    const d = await r.decryptFrame(f);
    assert.equal(d.ctr, BigInt(i));
    assert.equal(d.kid, kid);
    assert.deepEqual(d.plaintext, Uint8Array.of(i, i, i));
  }
  const kid2 = makeKid({ senderIndex: 77, generation: 1, step: 0 });
  const base2 = crypto.getRandomValues(new Uint8Array(16));
  await s.setKey(kid2, base2);
  const f = await s.encryptFrame(Uint8Array.of(9));
  await assert.rejects(r.decryptFrame(f), (e) => e.code === 'missing');
  await r.addKey(kid2, base2);
  const d = await r.decryptFrame(f);
  assert.equal(d.ctr, 5n); // the counter did not restart
  r.removeSenderIndex(77);
  await assert.rejects(r.decryptFrame(f), (e) => e.code === 'missing');
});

test('SFrameReceiver: lazy ratchet to a higher step of a known generation', async () => {
  const base0 = crypto.getRandomValues(new Uint8Array(16));
  const r = new SFrameReceiver();
  await r.addKey(makeKid({ senderIndex: 5, generation: 3, step: 2 }), base0);
  // the sender ratchets 3 times (step 2 -> 5)
  let k = base0;
  for (let i = 0; i < 3; i++) k = await ratchet(k);
  const s = new SFrameSender();
  const kid5 = makeKid({ senderIndex: 5, generation: 3, step: 5 });
  await s.setKey(kid5, k);
  const f = await s.encryptFrame(Uint8Array.of(1, 2, 3));
  assert.equal(r.hasKey(kid5), false);
  const d = await r.decryptFrame(f);
  assert.deepEqual(d.plaintext, Uint8Array.of(1, 2, 3));
  assert.equal(r.hasKey(kid5), true);
  // frames of the older step still decrypt (reordering)
  const s2 = new SFrameSender();
  await s2.setKey(makeKid({ senderIndex: 5, generation: 3, step: 2 }), base0);
  await r.decryptFrame(await s2.encryptFrame(Uint8Array.of(4)));
});

test('SFrameReceiver: no ratchet across generations, backwards or too far ahead', async () => {
  const base = crypto.getRandomValues(new Uint8Array(16));
  const r = new SFrameReceiver();
  await r.addKey(makeKid({ senderIndex: 9, generation: 1, step: 3 }), base);
  const enc = async (gen, step, key) => {
    const s = new SFrameSender();
    await s.setKey(makeKid({ senderIndex: 9, generation: gen, step }), key);
    return s.encryptFrame(Uint8Array.of(0));
  };
  let k = base;
  for (let i = 0; i < MAX_RATCHET_AHEAD + 1; i++) k = await ratchet(k);
  await assert.rejects(r.decryptFrame(await enc(1, 3 + MAX_RATCHET_AHEAD + 1, k)), (e) => e.code === 'missing');
  await assert.rejects(r.decryptFrame(await enc(2, 4, await ratchet(base))), (e) => e.code === 'missing');
  await assert.rejects(r.decryptFrame(await enc(1, 2, base)), (e) => e.code === 'missing');
  await assert.rejects(r.decryptFrame(Uint8Array.of(0x08)), (e) => e.code === 'failed');
});

test('SFrameReceiver: a forged frame with a higher step installs nothing', async () => {
  const base = crypto.getRandomValues(new Uint8Array(16));
  const r = new SFrameReceiver();
  await r.addKey(makeKid({ senderIndex: 1, generation: 0, step: 0 }), base);
  const kid1 = makeKid({ senderIndex: 1, generation: 0, step: 1 });
  const forger = new SFrameSender();
  await forger.setKey(kid1, crypto.getRandomValues(new Uint8Array(32)));
  await assert.rejects(r.decryptFrame(await forger.encryptFrame(Uint8Array.of(1))), (e) => e.code === 'failed');
  assert.equal(r.hasKey(kid1), false);
});
