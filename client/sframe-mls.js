// sframe-mls.js — SFrame (RFC 9605) frame keys from an MLS group (RFC 9605 §5.2), for the
// E2EE workers. Window, worker and Node 20+; WebCrypto only.
//
// Per epoch the group gives one base key (mls.js: MLS-Exporter("SFrame 1.0 Base Key", "",
// 16)). A sender's KID is (leaf index << 8) | (epoch mod 256) (mlsKid below); RFC 9605
// §4.4.2 binds the KID into the key and salt, so every sender has its own key and nonces.
//
// What a receiver enforces, per frame:
//   - the KID's leaf index is the sender this track belongs to (expectedLeaf): a frame
//     moved onto another member's track, or a member claiming another's index, is dropped
//     ('wrong-sender');
//   - the KID's epoch is the current one, or the previous one for oldEpochMs after the
//     switch (frames in flight); anything else is dropped ('unknown-key'); a new epoch with
//     the same low 8 bits replaces the old one (RFC 9605 §5.2);
//   - the counter is new for that KID: a sliding window of `replayWindow` counters per
//     KID, updated only after the frame authenticated ('replay');
//   - AES-GCM authenticates header and metadata ('auth').
// Every drop is counted in stats. The sender's counter restarts at 0 in each epoch (a new
// base key), never repeats within one.

import { deriveKeyAndSalt, encrypt as sframeEncrypt, decrypt as sframeDecrypt, decodeHeader } from './sframe.js';

export const EPOCH_BITS = 8n;

/** RFC 9605 §5.2 KID for a sender's leaf index and an epoch (context 0). */
export function mlsKid(leafIndex, epoch) {
  return (BigInt(leafIndex) << EPOCH_BITS) | (BigInt(epoch) & ((1n << EPOCH_BITS) - 1n));
}

/** The inverse of mlsKid: {leafIndex, epochBits}. */
export function splitMlsKid(kid) {
  const k = BigInt(kid);
  return { leafIndex: Number(k >> EPOCH_BITS), epochBits: Number(k & ((1n << EPOCH_BITS) - 1n)) };
}


export class MlsFrameError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class MlsFrameKeys {
  constructor({ now = () => Date.now(), oldEpochMs = 5000, replayWindow = 128 } = {}) {
    this.now = now;
    this.oldEpochMs = oldEpochMs;
    this.replayWindow = BigInt(replayWindow);
    this.current = null; // {epoch, baseKey, contexts: Map kid -> ctx, windows: Map kid -> {max, mask}}
    this.previous = null; // same, plus expiresAt
    this.leafIndex = null;
    this.sendCounter = 0n;
    this.stats = { encrypted: 0, decrypted: 0, wrongSender: 0, unknownKey: 0, replayed: 0, failed: 0 };
  }

  /** Installs the keys of a new epoch (from MlsMember's onEpoch). */
  setEpoch({ epoch, baseKey, leafIndex }) {
    const e = BigInt(epoch);
    if (this.current && e <= this.current.epoch) throw new RangeError('epochs only move forward');
    if (this.current) this.previous = { ...this.current, expiresAt: this.now() + this.oldEpochMs };
    this.current = { epoch: e, baseKey: Uint8Array.from(baseKey), contexts: new Map(), windows: new Map() };
    if (this.previous && (this.previous.epoch & 0xffn) === (e & 0xffn)) this.previous = null;
    this.leafIndex = leafIndex;
    this.sendCounter = 0n;
  }

  /** Forgets every key (left the group, or removed). */
  clear() {
    this.current = null;
    this.previous = null;
    this.leafIndex = null;
  }

  #epochFor(epochBits) {
    if (this.previous && this.now() >= this.previous.expiresAt) this.previous = null;
    if (this.current && Number(this.current.epoch & 0xffn) === epochBits) return this.current;
    if (this.previous && Number(this.previous.epoch & 0xffn) === epochBits) return this.previous;
    return null;
  }

  async #context(entry, kid) {
    let ctx = entry.contexts.get(kid);
    if (!ctx) {
      ctx = await deriveKeyAndSalt(entry.baseKey, kid);
      entry.contexts.set(kid, ctx);
    }
    return ctx;
  }

  /** Our frame for the current epoch: SFrame header ‖ ciphertext. */
  async encrypt(plaintext, metadata = new Uint8Array(0)) {
    if (!this.current || this.leafIndex === null) throw new MlsFrameError('no-key', 'not in a group');
    const kid = mlsKid(this.leafIndex, this.current.epoch);
    const ctx = await this.#context(this.current, kid);
    const ctr = this.sendCounter++;
    this.stats.encrypted++;
    return sframeEncrypt(ctx, kid, ctr, plaintext, metadata);
  }

  /**
   * decrypt(frame, metadata, expectedLeaf) -> plaintext. expectedLeaf: the leaf index of
   * the member whose track this frame came on (from the group's roster, by identity).
   * Throws MlsFrameError with code wrong-sender | unknown-key | replay | auth.
   * info, when given, gets the frame's epochBits (its KID's low bits) once it decrypted.
   */
  async decrypt(frame, metadata = new Uint8Array(0), expectedLeaf, info = null) {
    let header;
    try {
      header = decodeHeader(frame);
    } catch (e) {
      this.stats.failed++;
      throw new MlsFrameError('auth', e.message);
    }
    const { leafIndex, epochBits } = splitMlsKid(header.kid);
    if (leafIndex !== expectedLeaf) {
      this.stats.wrongSender++;
      throw new MlsFrameError('wrong-sender', `KID names leaf ${leafIndex}, track is leaf ${expectedLeaf}`);
    }
    const entry = this.#epochFor(epochBits);
    if (!entry) {
      this.stats.unknownKey++;
      throw new MlsFrameError('unknown-key', `no key for epoch bits ${epochBits}`);
    }
    const w = entry.windows.get(header.kid) || { max: -1n, mask: 0n };
    const ctr = header.ctr;
    if (ctr <= w.max) {
      const age = w.max - ctr;
      if (age >= this.replayWindow || (w.mask >> age) & 1n) {
        this.stats.replayed++;
        throw new MlsFrameError('replay', `counter ${ctr} already seen or too old`);
      }
    }
    let out;
    try {
      out = await sframeDecrypt(await this.#context(entry, header.kid), frame, metadata);
    } catch (e) {
      this.stats.failed++;
      throw new MlsFrameError('auth', e.message);
    }
    const full = (1n << this.replayWindow) - 1n;
    if (ctr > w.max) {
      const shift = w.max < 0n ? this.replayWindow : ctr - w.max;
      w.mask = shift >= this.replayWindow ? 1n : ((w.mask << shift) | 1n) & full;
      w.max = ctr;
    } else {
      w.mask |= 1n << (w.max - ctr);
    }
    entry.windows.set(header.kid, w);
    this.stats.decrypted++;
    if (info) info.epochBits = epochBits;
    return out.plaintext;
  }
}
