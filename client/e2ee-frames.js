// e2ee-frames.js — the state and frame pipeline of e2ee-worker.js, kept in a
// module of its own so that Node tests can drive it without a browser.
//
// FrameCrypto holds: one SFrameSender (our key), one SFrameReceiver (every
// other sender's keys), senderIndex -> connection id, per-sender counters and
// the debug hooks. handleMessage() implements the page <-> worker protocol
// (see e2ee-worker.js); transformFor(options) returns the TransformStream that
// both the RTCRtpScriptTransform path and the legacy path pipe frames through.

import { SFrameSender, SFrameReceiver, splitKid } from './sframe.js';

const utf8 = new TextEncoder();

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
    this.marker = null; // Uint8Array or null
    this.nullCipher = false;
    this.captureLimit = 0;
    this.captured = [];
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

  _capture(bytes) {
    if (this.captureLimit <= 0) return;
    this.captured.push({ at: this.now(), bytes: Uint8Array.from(bytes) });
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
      case 'stats':
        return { type: 'stats', stats: Object.fromEntries([...this.stats].map(([k, v]) => [k, { ...v }])), encrypted: this.encrypted };
      case 'debug-marker':
        this.marker = msg.marker == null || msg.marker === '' ? null : utf8.encode(String(msg.marker));
        return { type: 'ack' };
      case 'debug-null-cipher':
        this.nullCipher = !!msg.on;
        return { type: 'ack' };
      case 'debug-capture':
        this.captureLimit = Math.max(0, Math.floor(Number(msg.n) || 0));
        this.captured = this.captureLimit === 0 ? [] : this.captured.slice(-this.captureLimit);
        return { type: 'ack' };
      case 'debug-get-captured':
        return { type: 'captured', frames: this.captured.map((f) => ({ at: f.at, bytes: Uint8Array.from(f.bytes) })) };
      default:
        return { type: 'error', error: `unknown message type ${msg?.type}` };
    }
  }

  /** Send side: plaintext frame bytes -> bytes to put on the wire, or null to drop. */
  async encodeFrame(data) {
    let pt = bytesOf(data);
    if (this.marker) {
      const m = new Uint8Array(pt.length + this.marker.length);
      m.set(pt, 0);
      m.set(this.marker, pt.length);
      pt = m;
    }
    let out;
    if (this.nullCipher) {
      out = pt;
    } else {
      if (!this.sender.hasKey) return null; // never send media in clear
      out = await this.sender.encryptFrame(pt);
      this.encrypted++;
    }
    this._capture(out);
    return out;
  }

  /** Receive side: wire bytes -> plaintext frame bytes, or null to drop. */
  async decodeFrame(data, senderConnectionId = null) {
    const bytes = bytesOf(data);
    if (this.nullCipher) return this._stripMarker(bytes);
    try {
      const { kid, plaintext } = await this.receiver.decryptFrame(bytes);
      this._count(this._connectionFor(kid, senderConnectionId), 'decrypted');
      return this._stripMarker(plaintext);
    } catch (e) {
      const code = e?.code === 'missing' ? 'missing' : 'failed';
      this._count(this._connectionFor(e?.kid ?? null, senderConnectionId), code);
      return null;
    }
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
   * options: {side: 'send'|'receive', senderConnectionId?}
   * Frames are processed one at a time, in order; dropped frames are not enqueued.
   */
  transformFor(options = {}) {
    const side = options.side === 'send' ? 'send' : 'receive';
    const senderConnectionId = options.senderConnectionId ?? null;
    return new TransformStream({
      transform: async (frame, controller) => {
        let out;
        try {
          out = side === 'send' ? await this.encodeFrame(frame.data) : await this.decodeFrame(frame.data, senderConnectionId);
        } catch {
          out = null;
        }
        if (out === null) return;
        frame.data = exactBuffer(out);
        controller.enqueue(frame);
      },
    });
  }

  /** Pipes readable -> transform -> writable; returns the pipe's promise. */
  pipe(readable, writable, options) {
    return readable.pipeThrough(this.transformFor(options)).pipeTo(writable);
  }
}
