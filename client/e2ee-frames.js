// e2ee-frames.js — the state and frame pipeline of e2ee-worker.js, kept in a
// module of its own so that Node tests can drive it without a browser.
//
// FrameCrypto holds: one SFrameSender (our key), one SFrameReceiver (every
// other sender's keys), senderIndex -> connection id, per-sender counters and
// the debug hooks. handleMessage() implements the page <-> worker protocol
// (see e2ee-worker.js); transformFor(options) returns the TransformStream that
// both the RTCRtpScriptTransform path and the legacy path pipe frames through.
// The wire format of a frame (clear codec header ‖ SFrame) is frame-format.js's.
//
// MLS mode (docs/protocol.md §6.4): after an 'mls-epoch' message the keys come from the
// MLS group (sframe-mls.js) instead of round 1's SFrameSender/SFrameReceiver: a frame is
// accepted only on the track of the connection whose leaf its KID names, once (replay
// window), for the current epoch or the previous one for a few seconds.

import { SFrameSender, SFrameReceiver, splitKid } from './sframe.js';
import { MlsFrameKeys } from './sframe-mls.js';
import { clearLength, codecOfMimeType, joinFrame, splitFrame } from './frame-format.js';

const utf8 = new TextEncoder();
// Per sender, the first-decryption time of so many epochs is kept (stats epochsAt).
const EPOCHS_TIMED = 4;

function bytesOf(x) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError('bytes expected');
}

// An ArrayBuffer holding exactly these bytes (what RTCEncoded*Frame.data wants).
function exactBuffer(u8) {
  if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength) return u8.buffer;
  return u8.slice().buffer;
}

function metadataOf(frame) {
  try {
    return typeof frame.getMetadata === 'function' ? frame.getMetadata() : null;
  } catch {
    return null;
  }
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function endsWith(data, tail) {
  if (tail.length === 0 || data.length < tail.length) return false;
  const off = data.length - tail.length;
  for (let i = 0; i < tail.length; i++) if (data[off + i] !== tail[i]) return false;
  return true;
}

export class FrameCrypto {
  constructor({ now = () => Date.now() } = {}) {
    this.now = now;
    this.sender = new SFrameSender();
    this.receiver = new SFrameReceiver();
    this.indexToConnection = new Map(); // senderIndex -> connectionId
    this.stats = new Map(); // connectionId -> {decrypted, failed, missing}
    this.encrypted = 0;
    this.dropped = 0; // frames shorter than their codec's clear prefix
    this.payloadTypes = new Map(); // RTP payload type -> codec, from the page's SDP
    this.ssrcOwners = new Map(); // SSRC -> sending connection id, from the page's SDP
    this.marker = null; // Uint8Array or null
    this.nullCipher = false;
    this.captureLimit = 0;
    this.capturePlaintext = false;
    this.captured = [];
    // Video receive transforms that can ask for a key frame: {transformer, missing}.
    // missing: a frame failed for want of a key since the last request.
    this.keyFrameSources = new Set();
    this.mls = null; // MlsFrameKeys once the page sent 'mls-epoch'
    this.mlsLeaves = new Map(); // connectionId -> leaf index, from the group's roster
  }

  _count(connectionId, what) {
    const id = connectionId ?? 'unknown';
    let s = this.stats.get(id);
    if (!s) {
      s = { decrypted: 0, failed: 0, missing: 0 };
      this.stats.set(id, s);
    }
    s[what]++;
  }

  // Keeps the last captureLimit sent frames: the wire bytes, and (when asked
  // for) the plaintext frame they came from, for tests that look for plaintext
  // in what the server forwards.
  _capture(bytes, plaintext, codec, clear) {
    if (this.captureLimit <= 0) return;
    const entry = { at: this.now(), bytes: Uint8Array.from(bytes), codec, clear };
    if (this.capturePlaintext) entry.plaintext = Uint8Array.from(plaintext);
    this.captured.push(entry);
    while (this.captured.length > this.captureLimit) this.captured.shift();
  }

  /**
   * Handles one message from the page. Returns the reply object (the worker
   * posts it back with the request's id), or null for no reply.
   */
  async handleMessage(msg) {
    switch (msg?.type) {
      case 'set-send-key':
        await this.sender.setKey(BigInt(msg.kid), bytesOf(msg.baseKey));
        return { type: 'ack' };
      case 'add-receive-key': {
        const kid = BigInt(msg.kid);
        await this.receiver.addKey(kid, bytesOf(msg.baseKey));
        if (msg.connectionId) this.indexToConnection.set(splitKid(kid).senderIndex, msg.connectionId);
        // Frames that arrived before this key were dropped, the key frame among them:
        // ask for a new one now rather than when the browser's own retry comes.
        this._requestKeyFrames((source) => source.missing);
        return { type: 'ack' };
      }
      case 'remove-sender': {
        for (const [idx, conn] of [...this.indexToConnection]) {
          if (conn === msg.connectionId) {
            this.receiver.removeSenderIndex(idx);
            this.indexToConnection.delete(idx);
          }
        }
        return { type: 'ack' };
      }
      case 'mls-epoch': {
        // {epoch, baseKey, leafIndex, leaves: {connectionId: leafIndex}} from MlsMember.onEpoch
        if (!this.mls) this.mls = new MlsFrameKeys({ now: this.now });
        this.mls.setEpoch({ epoch: BigInt(msg.epoch), baseKey: bytesOf(msg.baseKey), leafIndex: msg.leafIndex });
        this.mlsLeaves = new Map(Object.entries(msg.leaves ?? {}).map(([id, leaf]) => [id, Number(leaf)]));
        // The new epoch's low bits may be an old one's (mod 256): time it afresh.
        const bits = Number(BigInt(msg.epoch) & 0xffn);
        for (const st of this.stats.values()) if (st.epochsAt) st.epochsAt = st.epochsAt.filter(([b]) => b !== bits);
        this._requestKeyFrames((source) => source.missing);
        return { type: 'ack' };
      }
      case 'mls-clear':
        if (this.mls) this.mls.clear();
        this.mlsLeaves = new Map();
        return { type: 'ack' };
      case 'set-streams':
        this.payloadTypes = new Map(Object.entries(msg.payloadTypes ?? {}).map(([pt, codec]) => [Number(pt), String(codec)]));
        this.ssrcOwners = new Map(Object.entries(msg.ssrcOwners ?? {}).map(([ssrc, id]) => [Number(ssrc), String(id)]));
        return { type: 'ack' };
      case 'request-key-frames':
        return { type: 'key-frames-requested', count: this._requestKeyFrames(() => true) };
      case 'stats': {
        const reply = {
          type: 'stats',
          stats: Object.fromEntries([...this.stats].map(([k, v]) => [k, v.epochsAt ? { ...v, epochsAt: v.epochsAt.map((x) => [...x]) } : { ...v }])),
          encrypted: this.encrypted,
          dropped: this.dropped,
        };
        if (this.mls) reply.mls = { ...this.mls.stats };
        return reply;
      }
      case 'debug-marker':
        this.marker = msg.marker == null || msg.marker === '' ? null : utf8.encode(String(msg.marker));
        return { type: 'ack' };
      case 'debug-null-cipher':
        this.nullCipher = !!msg.on;
        return { type: 'ack' };
      case 'debug-capture':
        this.captureLimit = Math.max(0, Math.floor(Number(msg.n) || 0));
        this.capturePlaintext = !!msg.plaintext;
        this.captured = this.captureLimit === 0 ? [] : this.captured.slice(-this.captureLimit);
        return { type: 'ack' };
      case 'debug-get-captured':
        return { type: 'captured', frames: this.captured.map((f) => ({ ...f, bytes: Uint8Array.from(f.bytes) })) };
      default:
        return { type: 'error', error: `unknown message type ${msg?.type}` };
    }
  }

  /**
   * Send side: plaintext frame bytes -> bytes to put on the wire, or null to
   * drop. codec ('vp8', 'opus', 'h264', ... or null) decides the clear prefix.
   */
  async encodeFrame(data, codec = null) {
    const frame = bytesOf(data);
    const clear = clearLength(codec, frame);
    if (clear < 0) {
      this.dropped++;
      return null;
    }
    const prefix = frame.subarray(0, clear);
    let body = frame.subarray(clear);
    if (this.marker) body = concat(body, this.marker);
    let out;
    if (this.nullCipher) {
      out = concat(prefix, body);
    } else {
      if (this.mls) {
        if (!this.mls.current) return null; // never send media in clear
        out = joinFrame(codec, prefix, await this.mls.encrypt(body, prefix));
      } else {
        if (!this.sender.hasKey) return null; // never send media in clear
        out = joinFrame(codec, prefix, await this.sender.encryptFrame(body, prefix));
      }
      this.encrypted++;
    }
    this._capture(out, frame, codec, clear);
    return out;
  }

  /** Receive side: wire bytes -> plaintext frame bytes, or null to drop. */
  async decodeFrame(data, senderConnectionId = null, codec = null) {
    return (await this._decode(bytesOf(data), senderConnectionId, codec)).plaintext;
  }

  // -> {plaintext (null when dropped), result: 'decrypted' | 'failed' | 'missing'}
  async _decode(bytes, senderConnectionId, codec) {
    if (this.nullCipher) return { plaintext: this._stripMarker(bytes), result: 'decrypted' };
    const parts = splitFrame(codec, bytes);
    if (!parts) {
      this._count(senderConnectionId, 'failed');
      return { plaintext: null, result: 'failed' };
    }
    if (this.mls) return this._decodeMls(parts, senderConnectionId);
    try {
      const { kid, plaintext } = await this.receiver.decryptFrame(parts.sframe, parts.prefix);
      this._count(this._connectionFor(kid, senderConnectionId), 'decrypted');
      return { plaintext: concat(parts.prefix, this._stripMarker(plaintext)), result: 'decrypted' };
    } catch (e) {
      const result = e?.code === 'missing' ? 'missing' : 'failed';
      this._count(this._connectionFor(e?.kid ?? null, senderConnectionId), result);
      return { plaintext: null, result };
    }
  }

  async _decodeMls(parts, senderConnectionId) {
    const leaf = senderConnectionId != null ? this.mlsLeaves.get(senderConnectionId) : undefined;
    if (leaf === undefined) {
      // A track of someone who is not in the group (yet): nothing to decrypt with.
      this._count(senderConnectionId, 'missing');
      return { plaintext: null, result: 'missing' };
    }
    try {
      const info = {};
      const plaintext = await this.mls.decrypt(parts.sframe, parts.prefix, leaf, info);
      this._count(senderConnectionId, 'decrypted');
      // The epoch (low bits) of this sender's latest frame, and [epochBits, when its first
      // frame of that epoch decrypted (this.now(), the page's clock)] for its last
      // EPOCHS_TIMED epochs: tests see members switch, and time it here, not when they poll.
      const s = this.stats.get(senderConnectionId);
      s.epochBits = info.epochBits;
      s.epochsAt ??= [];
      if (!s.epochsAt.some(([bits]) => bits === info.epochBits)) {
        s.epochsAt.push([info.epochBits, this.now()]);
        if (s.epochsAt.length > EPOCHS_TIMED) s.epochsAt.shift();
      }
      return { plaintext: concat(parts.prefix, this._stripMarker(plaintext)), result: 'decrypted' };
    } catch (e) {
      const result = e?.code === 'unknown-key' ? 'missing' : 'failed';
      this._count(senderConnectionId, result);
      return { plaintext: null, result };
    }
  }

  // Asks the receive transforms that match for a key frame
  // (RTCRtpScriptTransformer.sendKeyFrameRequest: a PLI to the server, which
  // relays it to the sender). Returns how many were asked.
  _requestKeyFrames(match) {
    let n = 0;
    for (const source of this.keyFrameSources) {
      if (!match(source)) continue;
      source.missing = false;
      if (typeof source.transformer.sendKeyFrameRequest !== 'function') continue;
      Promise.resolve().then(() => source.transformer.sendKeyFrameRequest()).catch(() => {});
      n++;
    }
    return n;
  }

  /**
   * The codec of an encoded frame: its metadata's mimeType, else its payload
   * type looked up in the page's SDP (set-streams), else Opus for audio (the
   * only audio codec hisoka offers); null when unknown (no clear prefix).
   */
  codecOf(frame, kind = null) {
    const metadata = metadataOf(frame);
    const byMime = codecOfMimeType(metadata?.mimeType);
    if (byMime) return byMime;
    const byPt = metadata?.payloadType != null ? this.payloadTypes.get(metadata.payloadType) : undefined;
    if (byPt) return byPt;
    const audio = kind === 'audio' || (typeof RTCEncodedAudioFrame === 'function' && frame instanceof RTCEncodedAudioFrame);
    return audio ? 'opus' : null;
  }

  // Who sent a received frame, when the transform was not told: by its SSRC.
  _senderOf(frame) {
    const ssrc = metadataOf(frame)?.synchronizationSource;
    return ssrc != null ? this.ssrcOwners.get(ssrc) ?? null : null;
  }

  _connectionFor(kid, fallback) {
    if (kid != null) {
      try {
        const conn = this.indexToConnection.get(splitKid(kid).senderIndex);
        if (conn) return conn;
      } catch {
        // not a hisoka kid
      }
    }
    return fallback ?? 'unknown';
  }

  _stripMarker(bytes) {
    if (this.marker && endsWith(bytes, this.marker)) return bytes.subarray(0, bytes.length - this.marker.length);
    return bytes;
  }

  /**
   * TransformStream for encoded frames (objects with a .data ArrayBuffer).
   * options: {side: 'send'|'receive', senderConnectionId?, kind?: 'audio'|'video'}
   * transformer: the RTCRtpScriptTransformer of a receive transform, if any, to
   * ask for key frames through. Frames are processed one at a time, in order;
   * dropped frames are not enqueued.
   */
  transformFor(options = {}, transformer = null) {
    const side = options.side === 'send' ? 'send' : 'receive';
    const senderConnectionId = options.senderConnectionId ?? null;
    const kind = options.kind ?? null;
    const source = side === 'receive' && transformer && kind !== 'audio' ? { transformer, missing: false } : null;
    if (source) this.keyFrameSources.add(source);
    const stream = new TransformStream({
      transform: async (frame, controller) => {
        let out;
        try {
          const codec = this.codecOf(frame, kind);
          if (side === 'send') {
            out = await this.encodeFrame(frame.data, codec);
          } else {
            const r = await this._decode(bytesOf(frame.data), senderConnectionId ?? this._senderOf(frame), codec);
            if (source && r.result === 'missing') source.missing = true;
            out = r.plaintext;
          }
        } catch {
          out = null;
        }
        if (out === null) return;
        frame.data = exactBuffer(out);
        controller.enqueue(frame);
      },
      flush: () => this.keyFrameSources.delete(source),
    });
    stream.keyFrameSource = source;
    return stream;
  }

  /** Pipes readable -> transform -> writable; returns the pipe's promise. */
  pipe(readable, writable, options, transformer = null) {
    const transform = this.transformFor(options, transformer);
    return readable.pipeThrough(transform).pipeTo(writable)
      .finally(() => this.keyFrameSources.delete(transform.keyFrameSource));
  }
}
