// sframe.js — SFrame (RFC 9605) for hisoka's browser client.
//
// Pure module: WebCrypto only (globalThis.crypto.subtle), no DOM. Works in a
// window, a (module) worker and Node 20.
//
// Cipher suite: AES_128_GCM_SHA256_128 (0x0004): HKDF-SHA-256, AES-128-GCM,
// 12-byte nonce, 16-byte tag.
//
// Frame = SFrame header || AES-GCM ciphertext || tag, where
//   header     = config byte X|K(3)|Y|C(3), then KID, then CTR (minimal
//                big-endian; a value 0..7 lives in the config byte itself)
//   key, salt  = HKDF-Expand(HKDF-Extract("", base_key), label, 16 / 12) with
//                label "SFrame 1.0 Secret key " / "SFrame 1.0 Secret salt "
//                followed by KID as 8 bytes big-endian and the suite as 2 bytes
//   nonce      = salt XOR CTR (CTR written big-endian into 12 bytes)
//   AAD        = header || metadata
// Ratchet (RFC 9605 §5.1):
//   base_key[i+1] = HKDF-Expand(HKDF-Extract("", base_key[i]),
//                               "SFrame 1.0 Ratchet", Nh = 32)
// so a ratcheted base key is 32 bytes long (a fresh one, drawn by hisoka, is
// 16). Every function here accepts base keys of 16..64 bytes.
//
// hisoka's KID layout (the RFC's "sender keys" scheme, §5.1, with R = 8 and a
// sender index on top):
//
//    bits 31..16       bits 15..8       bits 7..0
//   +----------------+----------------+--------------+
//   |  senderIndex   |   generation   |     step     |
//   +----------------+----------------+--------------+
//   kid = senderIndex << 16 | generation << 8 | step
//
//   senderIndex  random 16-bit number a participant picks once per session
//   generation   0..255 (wraps); +1 each time the sender draws a fresh random
//                base key (someone left)
//   step         0..255; +1 each time the sender ratchets its base key
//                (someone joined). A sender never ratchets past 255: it draws
//                a fresh generation instead.
// A receiver holding (senderIndex, generation, step s) derives step s' > s
// lazily, when the first frame with s' arrives, if s' - s <= MAX_RATCHET_AHEAD.
// The derived key is kept only if the frame that asked for it authenticates.

export const CIPHER_SUITE = 0x0004;
export const NK = 16; // AES-128 key
export const NN = 12; // nonce
export const NT = 16; // tag
export const NH = 32; // SHA-256 output
export const MAX_RATCHET_AHEAD = 16;

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const U64_MAX = (1n << 64n) - 1n;
const EMPTY = new Uint8Array(0);

const KEY_LABEL = utf8.encode('SFrame 1.0 Secret key ');
const SALT_LABEL = utf8.encode('SFrame 1.0 Secret salt ');
const RATCHET_LABEL = utf8.encode('SFrame 1.0 Ratchet');

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function toBytes(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`${what} must be bytes`);
}

function toU64(x, what) {
  let v;
  if (typeof x === 'bigint') v = x;
  else if (typeof x === 'number' && Number.isSafeInteger(x)) v = BigInt(x);
  else throw new TypeError(`${what} must be a bigint or a safe integer`);
  if (v < 0n || v > U64_MAX) throw new RangeError(`${what} out of range`);
  return v;
}

// Minimal big-endian encoding of a value >= 8 (1..8 bytes).
function minimalBytes(v) {
  const out = [];
  while (v > 0n) {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

function u64be(v) {
  const out = new Uint8Array(8);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** encodeHeader(kid: bigint, ctr: bigint) -> Uint8Array */
export function encodeHeader(kid, ctr) {
  const k = toU64(kid, 'kid');
  const c = toU64(ctr, 'ctr');
  let config = 0;
  const tail = [];
  if (k < 8n) {
    config |= Number(k) << 4;
  } else {
    const kb = minimalBytes(k);
    config |= 0x80 | ((kb.length - 1) << 4);
    tail.push(...kb);
  }
  if (c < 8n) {
    config |= Number(c);
  } else {
    const cb = minimalBytes(c);
    config |= 0x08 | (cb.length - 1);
    tail.push(...cb);
  }
  return Uint8Array.from([config, ...tail]);
}

function readValue(bytes, off, len, what) {
  if (off + len > bytes.length) throw new RangeError(`SFrame header truncated (${what})`);
  if (bytes[off] === 0) throw new RangeError(`SFrame header: ${what} not minimally encoded`);
  let v = 0n;
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(bytes[off + i]);
  if (v < 8n) throw new RangeError(`SFrame header: ${what} not minimally encoded`);
  return v;
}

/**
 * decodeHeader(bytes) -> {kid: bigint, ctr: bigint, length: number}
 * Throws on truncation and on non-minimal encodings.
 */
export function decodeHeader(bytes) {
  const b = toBytes(bytes, 'header');
  if (b.length < 1) throw new RangeError('SFrame header truncated');
  const config = b[0];
  let off = 1;
  let kid;
  let ctr;
  if (config & 0x80) {
    const len = ((config >> 4) & 7) + 1;
    kid = readValue(b, off, len, 'kid');
    off += len;
  } else {
    kid = BigInt((config >> 4) & 7);
  }
  if (config & 0x08) {
    const len = (config & 7) + 1;
    ctr = readValue(b, off, len, 'ctr');
    off += len;
  } else {
    ctr = BigInt(config & 7);
  }
  return { kid, ctr, length: off };
}

async function hkdf(ikm, info, lengthBytes) {
  const k = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: EMPTY, info },
    k,
    lengthBytes * 8,
  );
  return new Uint8Array(bits);
}

function checkBaseKey(baseKey) {
  const b = toBytes(baseKey, 'baseKey');
  if (b.length < 16 || b.length > 64) throw new RangeError('baseKey must be 16..64 bytes');
  return b;
}

/** The HKDF info strings of RFC 9605 §4.4.2 for a KID (exported for tests). */
export function derivationLabels(kid) {
  const tail = concat(u64be(toU64(kid, 'kid')), Uint8Array.of(CIPHER_SUITE >> 8, CIPHER_SUITE & 0xff));
  return { keyLabel: concat(KEY_LABEL, tail), saltLabel: concat(SALT_LABEL, tail) };
}

/**
 * deriveKeyAndSalt(baseKey: Uint8Array, kid: bigint)
 *   -> {kid, key: CryptoKey (AES-GCM), salt: Uint8Array(12), keyBytes: Uint8Array(16)}
 */
export async function deriveKeyAndSalt(baseKey, kid) {
  const b = checkBaseKey(baseKey);
  const k = toU64(kid, 'kid');
  const { keyLabel, saltLabel } = derivationLabels(k);
  const keyBytes = await hkdf(b, keyLabel, NK);
  const salt = await hkdf(b, saltLabel, NN);
  const key = await subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
  return { kid: k, key, salt, keyBytes };
}

/** ratchet(baseKey) -> Uint8Array(32), RFC 9605 §5.1. */
export async function ratchet(baseKey) {
  return hkdf(checkBaseKey(baseKey), RATCHET_LABEL, NH);
}

function nonceFor(salt, ctr) {
  const n = Uint8Array.from(salt);
  const c = u64be(ctr);
  for (let i = 0; i < 8; i++) n[NN - 8 + i] ^= c[i];
  return n;
}

/**
 * encrypt(ctx, kid, ctr, plaintext, metadata = empty) -> Uint8Array
 * ctx comes from deriveKeyAndSalt (for the same kid).
 */
export async function encrypt(ctx, kid, ctr, plaintext, metadata = EMPTY) {
  const k = toU64(kid, 'kid');
  const c = toU64(ctr, 'ctr');
  const header = encodeHeader(k, c);
  const aad = concat(header, toBytes(metadata, 'metadata'));
  const ct = await subtle.encrypt(
    { name: 'AES-GCM', iv: nonceFor(ctx.salt, c), additionalData: aad, tagLength: NT * 8 },
    ctx.key,
    toBytes(plaintext, 'plaintext'),
  );
  return concat(header, new Uint8Array(ct));
}

/**
 * decrypt(ctx, frame, metadata = empty) -> {kid, ctr, plaintext}
 * Throws on a bad header, a short frame or an authentication failure.
 */
export async function decrypt(ctx, frame, metadata = EMPTY) {
  const f = toBytes(frame, 'frame');
  const { kid, ctr, length } = decodeHeader(f);
  if (f.length < length + NT) throw new RangeError('SFrame ciphertext truncated');
  const aad = concat(f.subarray(0, length), toBytes(metadata, 'metadata'));
  const pt = await subtle.decrypt(
    { name: 'AES-GCM', iv: nonceFor(ctx.salt, ctr), additionalData: aad, tagLength: NT * 8 },
    ctx.key,
    f.subarray(length),
  );
  return { kid, ctr, plaintext: new Uint8Array(pt) };
}

// ---- hisoka KID layout ------------------------------------------------------

/** makeKid({senderIndex, generation, step}) -> bigint */
export function makeKid({ senderIndex, generation, step }) {
  for (const [n, v, max] of [['senderIndex', senderIndex, 0xffff], ['generation', generation, 0xff], ['step', step, 0xff]]) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${n} out of range`);
  }
  return (BigInt(senderIndex) << 16n) | (BigInt(generation) << 8n) | BigInt(step);
}

/** splitKid(kid) -> {senderIndex, generation, step} (throws if kid >= 2^32) */
export function splitKid(kid) {
  const k = toU64(kid, 'kid');
  if (k > 0xffffffffn) throw new RangeError('kid is not a hisoka kid');
  const n = Number(k);
  return { senderIndex: n >>> 16, generation: (n >>> 8) & 0xff, step: n & 0xff };
}

// ---- helpers for a sender and a receiver ---------------------------------------

/**
 * One outgoing stream of frames. The counter never goes back, across key
 * changes too, so (KID, CTR) is never reused.
 */
export class SFrameSender {
  constructor() {
    this.kid = null;
    this.ctx = null;
    this.counter = 0n;
  }

  /** Derives the context for (kid, baseKey) and switches to it atomically. */
  async setKey(kid, baseKey) {
    const ctx = await deriveKeyAndSalt(baseKey, kid);
    this.ctx = ctx;
    this.kid = ctx.kid;
  }

  get hasKey() {
    return this.ctx !== null;
  }

  /** encryptFrame(bytes, metadata?) -> Uint8Array (header || ct || tag) */
  async encryptFrame(bytes, metadata = EMPTY) {
    if (!this.ctx) throw new Error('SFrameSender: no key');
    const ctx = this.ctx;
    const ctr = this.counter;
    if (ctr > U64_MAX) throw new Error('SFrameSender: counter exhausted');
    this.counter = ctr + 1n;
    return encrypt(ctx, ctx.kid, ctr, bytes, metadata);
  }
}

/** Error thrown by SFrameReceiver.decryptFrame; .code is 'missing' or 'failed'. */
export class SFrameError extends Error {
  constructor(code, message, kid = null) {
    super(message);
    this.name = 'SFrameError';
    this.code = code;
    this.kid = kid;
  }
}

/**
 * Key store kid -> {baseKey, ctx} with lazy ratcheting. No replay protection
 * (RFC 9605 leaves it to the application; SRTP already covers the hop).
 */
export class SFrameReceiver {
  constructor({ maxKeysPerSender = 8, maxRatchetAhead = MAX_RATCHET_AHEAD } = {}) {
    this.keys = new Map(); // kid(bigint) -> {baseKey, ctx}
    this.maxKeysPerSender = maxKeysPerSender;
    this.maxRatchetAhead = maxRatchetAhead;
  }

  /** Installs (or replaces) the base key for kid. */
  async addKey(kid, baseKey) {
    const ctx = await deriveKeyAndSalt(baseKey, kid);
    this._install(ctx.kid, Uint8Array.from(checkBaseKey(baseKey)), ctx);
  }

  _install(kid, baseKey, ctx) {
    this.keys.delete(kid); // re-insert: Map order = age
    this.keys.set(kid, { baseKey, ctx });
    const { senderIndex } = splitKid(kid);
    const mine = [...this.keys.keys()].filter((k) => splitKid(k).senderIndex === senderIndex);
    while (mine.length > this.maxKeysPerSender) this.keys.delete(mine.shift());
  }

  hasKey(kid) {
    return this.keys.has(BigInt(kid));
  }

  /** Drops every key of one sender index. */
  removeSenderIndex(senderIndex) {
    for (const k of [...this.keys.keys()]) if (splitKid(k).senderIndex === senderIndex) this.keys.delete(k);
  }

  clear() {
    this.keys.clear();
  }

  // Finds a key of the same (senderIndex, generation) with a lower step that
  // is close enough to ratchet from; returns a candidate ctx or null.
  async _ratchetTo(kid) {
    let want;
    try {
      want = splitKid(kid);
    } catch {
      return null;
    }
    let best = null;
    for (const [k, entry] of this.keys) {
      const have = splitKid(k);
      if (have.senderIndex !== want.senderIndex || have.generation !== want.generation) continue;
      if (have.step >= want.step || want.step - have.step > this.maxRatchetAhead) continue;
      if (!best || have.step > best.step) best = { step: have.step, baseKey: entry.baseKey };
    }
    if (!best) return null;
    let base = best.baseKey;
    for (let s = best.step; s < want.step; s++) base = await ratchet(base);
    return { baseKey: base, ctx: await deriveKeyAndSalt(base, kid) };
  }

  /**
   * decryptFrame(bytes, metadata?) -> {kid, ctr, plaintext}
   * Throws SFrameError with code 'missing' (no key for the kid and none to
   * ratchet from) or 'failed' (bad header, authentication failure).
   */
  async decryptFrame(bytes, metadata = EMPTY) {
    let hdr;
    try {
      hdr = decodeHeader(bytes);
    } catch (e) {
      throw new SFrameError('failed', `bad SFrame header: ${e.message}`);
    }
    const entry = this.keys.get(hdr.kid);
    if (entry) {
      try {
        return await decrypt(entry.ctx, bytes, metadata);
      } catch (e) {
        throw new SFrameError('failed', `SFrame decryption failed: ${e.message}`, hdr.kid);
      }
    }
    const cand = await this._ratchetTo(hdr.kid);
    if (!cand) throw new SFrameError('missing', `no key for kid ${hdr.kid}`, hdr.kid);
    let out;
    try {
      out = await decrypt(cand.ctx, bytes, metadata);
    } catch (e) {
      throw new SFrameError('failed', `SFrame decryption failed: ${e.message}`, hdr.kid);
    }
    if (!this.keys.has(hdr.kid)) this._install(hdr.kid, cand.baseKey, cand.ctx);
    return out;
  }
}
