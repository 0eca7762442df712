// keys.js — identities, safety numbers, sender-key wrapping and the binary
// key message that the server relays. WebCrypto only; window, worker, Node 20.
//
// Identity: an ECDH P-256 key pair per session. The public key travels raw
// (65 bytes, 0x04 || X || Y), base64, in signaling_notify_metadata as
// { e2ee_public_key: "<base64>" }.
//
// Safety number (sync, same on every screen): SHA-256 over the 65-byte raw
// public key; the first 30 bytes are cut into 6 chunks of 5 bytes; each chunk,
// read as a big-endian 40-bit integer, is reduced mod 100000 and written as 5
// decimal digits (zero-padded). The 6 groups are joined with single spaces:
// "01234 56789 01234 56789 01234 56789" (35 characters).
//
// Wrapping a sender key for one recipient (src = sender's connection id, dst =
// recipient's, both 26 ASCII characters):
//   shared = ECDH(myPrivateKey, theirPublicKey)                (32 bytes)
//   kek    = HKDF-SHA-256(ikm = shared, salt = src || dst,
//                         info = "hisoka e2ee wrap v1") -> AES-128-GCM key
//   ciphertext = IV (12 random bytes) || AES-GCM(kek, IV, aad = src || dst, payload)
// A different recipient, a swapped direction or any changed byte fails.
//
// Sender-key payload (the plaintext that gets wrapped), big-endian:
//   byte 0      version = 1
//   bytes 1-2   senderIndex (16 bits)
//   byte 3      generation
//   byte 4      step
//   byte 5      base key length L (16..64; 16 fresh, 32 after a ratchet)
//   bytes 6..   base key (L bytes)
//   total 6 + L bytes, nothing after.
//
// Key message envelope (big-endian), relayed unchanged by the server:
//   byte 0      Type = 2
//   byte 1      Reserved = 0
//   bytes 2-3   CiphertextLength (1..1024)
//   bytes 4-29  SrcConnectionId (26 ASCII bytes)
//   bytes 30-55 DstConnectionId (26 ASCII bytes)
//   bytes 56..  Ciphertext (CiphertextLength bytes), nothing after.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export const KEY_MESSAGE_TYPE = 2;
export const KEY_MESSAGE_HEADER = 56;
export const KEY_MESSAGE_MAX_CIPHERTEXT = 1024;
export const CONNECTION_ID_LENGTH = 26;
export const WRAP_INFO = 'hisoka e2ee wrap v1';
export const SENDER_KEY_VERSION = 1;

const ECDH = { name: 'ECDH', namedCurve: 'P-256' };

// ---- base64 ---------------------------------------------------------------------

export function bytesToBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

export function base64ToBytes(b64) {
  if (typeof b64 !== 'string') throw new TypeError('base64 string expected');
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// ---- identity -------------------------------------------------------------------

/** generateIdentity() -> {privateKey, publicKey, publicKeyRaw: Uint8Array(65)} */
export async function generateIdentity() {
  const pair = await subtle.generateKey(ECDH, false, ['deriveBits']);
  const publicKeyRaw = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyRaw };
}

/** publicKeyFromRaw(Uint8Array(65)) -> CryptoKey; throws unless an uncompressed P-256 point. */
export async function publicKeyFromRaw(raw) {
  if (!(raw instanceof Uint8Array) || raw.length !== 65 || raw[0] !== 0x04) {
    throw new TypeError('public key must be 65 raw bytes (uncompressed P-256)');
  }
  return subtle.importKey('raw', raw, ECDH, true, []);
}

/** publicKeyFromBase64(b64) -> CryptoKey */
export async function publicKeyFromBase64(b64) {
  return publicKeyFromRaw(base64ToBytes(b64));
}

// ---- safety number (synchronous SHA-256) ------------------------------------------

const SHA_K = new Uint32Array(64);
const SHA_H0 = new Uint32Array(8);
{
  const primes = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  const frac32 = (x) => Math.floor((x - Math.floor(x)) * 4294967296) >>> 0;
  for (let i = 0; i < 64; i++) SHA_K[i] = frac32(Math.cbrt(primes[i]));
  for (let i = 0; i < 8; i++) SHA_H0[i] = frac32(Math.sqrt(primes[i]));
}

/** sha256(bytes) -> Uint8Array(32), synchronous (small inputs only). */
export function sha256(bytes) {
  const len = bytes.length;
  const total = (((len + 9 + 63) >> 6) << 6);
  const m = new Uint8Array(total);
  m.set(bytes);
  m[len] = 0x80;
  const bitLen = len * 8;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(bitLen / 4294967296));
  dv.setUint32(total - 4, bitLen >>> 0);
  const H = Uint32Array.from(SHA_H0);
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + SHA_K[i] + W[i]) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d;
    H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, H[i]);
  return out;
}

/** safetyNumber(publicKeyRaw: Uint8Array(65)) -> "ddddd ddddd ddddd ddddd ddddd ddddd" */
export function safetyNumber(publicKeyRaw) {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== 65) {
    throw new TypeError('safetyNumber needs the 65-byte raw public key');
  }
  const d = sha256(publicKeyRaw);
  const groups = [];
  for (let g = 0; g < 6; g++) {
    let v = 0;
    for (let i = 0; i < 5; i++) v = v * 256 + d[g * 5 + i]; // < 2^40, exact in a double
    groups.push(String(v % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

// ---- connection ids ---------------------------------------------------------------

function idBytes(id, what) {
  if (typeof id !== 'string' || id.length !== CONNECTION_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) {
    throw new TypeError(`${what} must be a 26-character ASCII connection id`);
  }
  return utf8.encode(id);
}

function idPair(srcId, dstId) {
  const out = new Uint8Array(2 * CONNECTION_ID_LENGTH);
  out.set(idBytes(srcId, 'srcId'), 0);
  out.set(idBytes(dstId, 'dstId'), CONNECTION_ID_LENGTH);
  return out;
}

// ---- wrapping ---------------------------------------------------------------------

async function wrapKey(myPrivateKey, theirPublicKey, ids) {
  const shared = await subtle.deriveBits({ name: 'ECDH', public: theirPublicKey }, myPrivateKey, 256);
  const ikm = await subtle.importKey('raw', shared, 'HKDF', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: ids, info: utf8.encode(WRAP_INFO) },
    ikm,
    { name: 'AES-GCM', length: 128 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** wrapSenderKey({myPrivateKey, theirPublicKey, srcId, dstId, payload}) -> Uint8Array (IV || ct) */
export async function wrapSenderKey({ myPrivateKey, theirPublicKey, srcId, dstId, payload }) {
  const ids = idPair(srcId, dstId);
  const kek = await wrapKey(myPrivateKey, theirPublicKey, ids);
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ids }, kek, payload));
  const out = new Uint8Array(12 + ct.length);
  out.set(iv, 0);
  out.set(ct, 12);
  return out;
}

/** unwrapSenderKey({myPrivateKey, theirPublicKey, srcId, dstId, ciphertext}) -> payload; throws on any mismatch */
export async function unwrapSenderKey({ myPrivateKey, theirPublicKey, srcId, dstId, ciphertext }) {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < 12 + 16) throw new RangeError('wrapped key too short');
  const ids = idPair(srcId, dstId);
  const kek = await wrapKey(myPrivateKey, theirPublicKey, ids);
  const pt = await subtle.decrypt(
    { name: 'AES-GCM', iv: ciphertext.subarray(0, 12), additionalData: ids },
    kek,
    ciphertext.subarray(12),
  );
  return new Uint8Array(pt);
}

// ---- sender-key payload -------------------------------------------------------------

/** encodeSenderKey({senderIndex, generation, step, baseKey}) -> Uint8Array(6 + L) */
export function encodeSenderKey({ senderIndex, generation, step, baseKey }) {
  if (!Number.isInteger(senderIndex) || senderIndex < 0 || senderIndex > 0xffff) throw new RangeError('senderIndex');
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xff) throw new RangeError('generation');
  if (!Number.isInteger(step) || step < 0 || step > 0xff) throw new RangeError('step');
  if (!(baseKey instanceof Uint8Array) || baseKey.length < 16 || baseKey.length > 64) throw new RangeError('baseKey');
  const out = new Uint8Array(6 + baseKey.length);
  out[0] = SENDER_KEY_VERSION;
  out[1] = senderIndex >> 8;
  out[2] = senderIndex & 0xff;
  out[3] = generation;
  out[4] = step;
  out[5] = baseKey.length;
  out.set(baseKey, 6);
  return out;
}

/** decodeSenderKey(bytes) -> {senderIndex, generation, step, baseKey}; throws on a bad layout */
export function decodeSenderKey(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length < 6) throw new RangeError('sender key too short');
  if (bytes[0] !== SENDER_KEY_VERSION) throw new RangeError('unknown sender key version');
  const len = bytes[5];
  if (len < 16 || len > 64 || bytes.length !== 6 + len) throw new RangeError('bad sender key length');
  return {
    senderIndex: (bytes[1] << 8) | bytes[2],
    generation: bytes[3],
    step: bytes[4],
    baseKey: bytes.slice(6),
  };
}

// ---- key message envelope -------------------------------------------------------------

/** encodeKeyMessage(srcId, dstId, ciphertext) -> Uint8Array(56 + n) */
export function encodeKeyMessage(srcId, dstId, ciphertext) {
  if (!(ciphertext instanceof Uint8Array)) throw new TypeError('ciphertext must be a Uint8Array');
  const n = ciphertext.length;
  if (n < 1 || n > KEY_MESSAGE_MAX_CIPHERTEXT) throw new RangeError('ciphertext length must be 1..1024');
  const ids = idPair(srcId, dstId);
  const out = new Uint8Array(KEY_MESSAGE_HEADER + n);
  out[0] = KEY_MESSAGE_TYPE;
  out[1] = 0;
  out[2] = n >> 8;
  out[3] = n & 0xff;
  out.set(ids, 4);
  out.set(ciphertext, KEY_MESSAGE_HEADER);
  return out;
}

/** decodeKeyMessage(bytes) -> {type, srcId, dstId, ciphertext}; throws on anything but a well-formed type-2 message */
export function decodeKeyMessage(bytes) {
  let b = bytes;
  if (b instanceof ArrayBuffer) b = new Uint8Array(b);
  else if (ArrayBuffer.isView(b) && !(b instanceof Uint8Array)) b = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (!(b instanceof Uint8Array)) throw new TypeError('key message must be bytes');
  if (b.length < KEY_MESSAGE_HEADER + 1) throw new RangeError('key message too short');
  if (b[0] !== KEY_MESSAGE_TYPE) throw new RangeError(`unknown key message type ${b[0]}`);
  if (b[1] !== 0) throw new RangeError('reserved byte must be 0');
  const n = (b[2] << 8) | b[3];
  if (n < 1 || n > KEY_MESSAGE_MAX_CIPHERTEXT) throw new RangeError('bad ciphertext length');
  if (b.length !== KEY_MESSAGE_HEADER + n) throw new RangeError('key message length mismatch');
  const ascii = (start) => {
    let s = '';
    for (let i = start; i < start + CONNECTION_ID_LENGTH; i++) {
      if (b[i] < 0x21 || b[i] > 0x7e) throw new RangeError('connection id is not printable ASCII');
      s += String.fromCharCode(b[i]);
    }
    return s;
  };
  return {
    type: KEY_MESSAGE_TYPE,
    srcId: ascii(4),
    dstId: ascii(4 + CONNECTION_ID_LENGTH),
    ciphertext: b.slice(KEY_MESSAGE_HEADER),
  };
}
