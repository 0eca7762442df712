// Unit tests for client/keys.js. Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  generateIdentity,
  publicKeyFromBase64,
  bytesToBase64,
  base64ToBytes,
  sha256,
  safetyNumber,
  wrapSenderKey,
  unwrapSenderKey,
  encodeSenderKey,
  decodeSenderKey,
  encodeKeyMessage,
  decodeKeyMessage,
} from '../../client/keys.js';

const A_ID = '0123456789ABCDEFGHJKMNPQRS';
const B_ID = 'TVWXYZ0123456789ABCDEFGHJK';
const C_ID = 'MNPQRSTVWXYZ0123456789ABCD';

test('generateIdentity: 65-byte uncompressed P-256 public key, base64 round trip', async () => {
  const a = await generateIdentity();
  assert.equal(a.publicKeyRaw.length, 65);
  assert.equal(a.publicKeyRaw[0], 4);
  const b64 = bytesToBase64(a.publicKeyRaw);
  assert.deepEqual(base64ToBytes(b64), a.publicKeyRaw);
  const k = await publicKeyFromBase64(b64);
  assert.equal(k.type, 'public');
  await assert.rejects(publicKeyFromBase64(bytesToBase64(a.publicKeyRaw.subarray(1))));
  await assert.rejects(publicKeyFromBase64(bytesToBase64(new Uint8Array(65).fill(4))));
});

test('sha256 (sync) matches node:crypto', () => {
  for (const n of [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const b = crypto.getRandomValues(new Uint8Array(n));
    assert.equal(Buffer.from(sha256(b)).toString('hex'), createHash('sha256').update(b).digest('hex'), `n=${n}`);
  }
  assert.equal(Buffer.from(sha256(new TextEncoder().encode('abc'))).toString('hex'),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('safety number: 6 groups of 5 digits, deterministic, key-specific', async () => {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const sa = safetyNumber(a.publicKeyRaw);
  assert.match(sa, /^\d{5}( \d{5}){5}$/);
  assert.equal(safetyNumber(Uint8Array.from(a.publicKeyRaw)), sa);
  assert.notEqual(safetyNumber(b.publicKeyRaw), sa);
  // the documented construction
  const d = createHash('sha256').update(a.publicKeyRaw).digest();
  const groups = [];
  for (let g = 0; g < 6; g++) groups.push(String(Number(d.readUIntBE(g * 5, 5) % 100000)).padStart(5, '0'));
  assert.equal(sa, groups.join(' '));
  assert.throws(() => safetyNumber(new Uint8Array(33)));
});

test('wrap/unwrap round trip between two identities', async () => {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const payload = encodeSenderKey({ senderIndex: 0xbeef, generation: 3, step: 7, baseKey: crypto.getRandomValues(new Uint8Array(16)) });
  const ct = await wrapSenderKey({ myPrivateKey: a.privateKey, theirPublicKey: b.publicKey, srcId: A_ID, dstId: B_ID, payload });
  assert.equal(ct.length, 12 + payload.length + 16);
  const out = await unwrapSenderKey({ myPrivateKey: b.privateKey, theirPublicKey: a.publicKey, srcId: A_ID, dstId: B_ID, ciphertext: ct });
  assert.deepEqual(out, payload);
  // two wraps of the same payload differ (random IV)
  const ct2 = await wrapSenderKey({ myPrivateKey: a.privateKey, theirPublicKey: b.publicKey, srcId: A_ID, dstId: B_ID, payload });
  assert.notDeepEqual(ct2, ct);
});

test('unwrap refuses the wrong recipient, wrong ids, wrong sender and tampering', async () => {
  const a = await generateIdentity();
  const b = await generateIdentity();
  const c = await generateIdentity();
  const payload = new Uint8Array(22).fill(9);
  const ct = await wrapSenderKey({ myPrivateKey: a.privateKey, theirPublicKey: b.publicKey, srcId: A_ID, dstId: B_ID, payload });
  const args = { myPrivateKey: b.privateKey, theirPublicKey: a.publicKey, srcId: A_ID, dstId: B_ID, ciphertext: ct };
  await assert.rejects(unwrapSenderKey({ ...args, myPrivateKey: c.privateKey })); // C is not the recipient
  await assert.rejects(unwrapSenderKey({ ...args, theirPublicKey: c.publicKey })); // not from C
  await assert.rejects(unwrapSenderKey({ ...args, dstId: C_ID }));
  await assert.rejects(unwrapSenderKey({ ...args, srcId: B_ID, dstId: A_ID })); // reflected
  for (const i of [0, 11, 12, ct.length - 1]) {
    const bad = Uint8Array.from(ct);
    bad[i] ^= 0x80;
    await assert.rejects(unwrapSenderKey({ ...args, ciphertext: bad }), `byte ${i}`);
  }
  await assert.rejects(unwrapSenderKey({ ...args, ciphertext: ct.subarray(0, 20) }));
  await assert.rejects(wrapSenderKey({ myPrivateKey: a.privateKey, theirPublicKey: b.publicKey, srcId: 'short', dstId: B_ID, payload }));
});

test('sender-key payload layout', () => {
  const baseKey = Uint8Array.from({ length: 16 }, (_, i) => i);
  const p = encodeSenderKey({ senderIndex: 0x1234, generation: 0xab, step: 0xcd, baseKey });
  assert.equal(Buffer.from(p).toString('hex'), '011234abcd10' + '000102030405060708090a0b0c0d0e0f');
  assert.deepEqual(decodeSenderKey(p), { senderIndex: 0x1234, generation: 0xab, step: 0xcd, baseKey });
  const k32 = new Uint8Array(32).fill(7);
  assert.deepEqual(decodeSenderKey(encodeSenderKey({ senderIndex: 1, generation: 2, step: 3, baseKey: k32 })).baseKey, k32);
  assert.throws(() => decodeSenderKey(p.subarray(0, 21)));
  assert.throws(() => decodeSenderKey(Uint8Array.from([...p, 0])));
  assert.throws(() => decodeSenderKey(Uint8Array.from([2, ...p.subarray(1)])));
  assert.throws(() => encodeSenderKey({ senderIndex: 0x10000, generation: 0, step: 0, baseKey }));
  assert.throws(() => encodeSenderKey({ senderIndex: 0, generation: 0, step: 0, baseKey: new Uint8Array(8) }));
});

test('key message: exact byte layout and round trip', () => {
  const ct = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const m = encodeKeyMessage(A_ID, B_ID, ct);
  assert.equal(m.length, 56 + 300);
  assert.equal(m[0], 2);
  assert.equal(m[1], 0);
  assert.equal((m[2] << 8) | m[3], 300);
  assert.equal(Buffer.from(m.subarray(4, 30)).toString('ascii'), A_ID);
  assert.equal(Buffer.from(m.subarray(30, 56)).toString('ascii'), B_ID);
  assert.deepEqual(m.subarray(56), ct);
  const d = decodeKeyMessage(m);
  assert.deepEqual(d, { type: 2, srcId: A_ID, dstId: B_ID, ciphertext: ct });
  assert.deepEqual(decodeKeyMessage(m.buffer).srcId, A_ID); // ArrayBuffer as from a WebSocket
  assert.equal(decodeKeyMessage(encodeKeyMessage(A_ID, B_ID, new Uint8Array(1024))).ciphertext.length, 1024);
});

test('key message: refusals', () => {
  const m = encodeKeyMessage(A_ID, B_ID, new Uint8Array(50).fill(1));
  const mod = (f) => {
    const c = Uint8Array.from(m);
    f(c);
    return c;
  };
  assert.throws(() => decodeKeyMessage(m.subarray(0, 55)));
  assert.throws(() => decodeKeyMessage(m.subarray(0, m.length - 1))); // shorter than the length says
  assert.throws(() => decodeKeyMessage(Uint8Array.from([...m, 0]))); // longer
  for (const t of [0, 1, 3, 255]) assert.throws(() => decodeKeyMessage(mod((c) => { c[0] = t; })), `type ${t}`);
  assert.throws(() => decodeKeyMessage(mod((c) => { c[1] = 1; })));
  assert.throws(() => decodeKeyMessage(mod((c) => { c[2] = 0; c[3] = 0; })));
  assert.throws(() => decodeKeyMessage(mod((c) => { c[10] = 0; })));
  assert.throws(() => decodeKeyMessage(mod((c) => { c[40] = 0x80; })));
  const big = new Uint8Array(56 + 1025);
  big[0] = 2;
  big[2] = 0x04;
  big[3] = 0x01;
  big.fill(0x41, 4, 56);
  assert.throws(() => decodeKeyMessage(big));
  assert.throws(() => decodeKeyMessage('not bytes'));
  assert.throws(() => encodeKeyMessage(A_ID, B_ID, new Uint8Array(0)));
  assert.throws(() => encodeKeyMessage(A_ID, B_ID, new Uint8Array(1025)));
  assert.throws(() => encodeKeyMessage(A_ID.slice(1), B_ID, new Uint8Array(1)));
  assert.throws(() => encodeKeyMessage(A_ID, 'é'.repeat(26), new Uint8Array(1)));
});
