// e2ee.js — page-side E2EE manager for hisoka's signaling client.
//
// Keys: every participant is an SFrame sender with its own base key. Its KID is
//   senderIndex << 16 | generation << 8 | step        (see sframe.js)
// senderIndex is drawn at random once per session (16 bits), generation 0 and
// step 0 start with a random 16-byte base key.
//
//   member already there when we joined (joinedNow = false)
//       -> we send them our current key.
//   new joiner (joinedNow = true)
//       -> we ratchet (step + 1; base key = RFC 9605 §5.1 ratchet), send the
//          ratcheted key to the joiner only and start using it at once. The
//          others derive it themselves when the first frame with the new step
//          arrives (lazy ratchet in the worker). The joiner cannot decrypt
//          anything sent before it joined. At step 255 a fresh generation is
//          drawn instead (and sent to everybody).
//   member left
//       -> fresh random key (generation + 1, step 0) sent to every remaining
//          member; after switchDelayMs (500 ms) the sender switches to it; the
//          leaver's keys are forgotten. The old key is never used again.
//
// Key messages travel through the server as binary WebSocket messages (see
// keys.js for the envelope and the wrapping). A key message from a connection
// we do not know yet is kept for up to 30 s and used when addMember() names
// that connection. Every state change runs one at a time, in call order.

import {
  generateIdentity,
  publicKeyFromBase64,
  safetyNumber as safetyNumberOf,
  bytesToBase64,
  base64ToBytes,
  wrapSenderKey,
  unwrapSenderKey,
  encodeSenderKey,
  decodeSenderKey,
  encodeKeyMessage,
  decodeKeyMessage,
} from './keys.js';
import { makeKid, ratchet } from './sframe.js';
import { codecsOfSdp } from './frame-format.js';

export const SWITCH_DELAY_MS = 500;
const PENDING_TTL_MS = 30000;
const PENDING_PER_SOURCE = 8;
const HELD_PER_MEMBER = 8;
const REQUEST_TIMEOUT_MS = 10000;

/** SSRC -> the stream id of its a=ssrc msid line (the sending connection's id in hisoka). */
export function ssrcOwnersOfSdp(sdp) {
  const out = {};
  for (const m of String(sdp).matchAll(/^a=ssrc:(\d+) msid:(\S+)/gm)) out[Number(m[1])] = m[2];
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const randomBytes = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export class E2EE {
  /**
   * create({sendKeyMessage, workerUrl?, worker?, switchDelayMs?})
   *   sendKeyMessage(dstConnectionId, Uint8Array): send one binary WS message.
   *   workerUrl: defaults to ./e2ee-worker.js next to this module (module worker).
   *   worker: an already created worker-like object (tests).
   */
  static async create({ sendKeyMessage, workerUrl, worker, switchDelayMs = SWITCH_DELAY_MS } = {}) {
    if (typeof sendKeyMessage !== 'function') throw new TypeError('sendKeyMessage is required');
    const identity = await generateIdentity();
    const w = worker ?? new Worker(workerUrl ?? new URL('./e2ee-worker.js', import.meta.url), { type: 'module' });
    const e2ee = new E2EE(identity, w, sendKeyMessage, switchDelayMs);
    await e2ee._setSendKey();
    return e2ee;
  }

  constructor(identity, worker, sendKeyMessage, switchDelayMs) {
    // identity is null for a subclass that does not use round 1's pairwise keys (e2ee-mls.js).
    this._identity = identity;
    this._publicKeyBase64 = identity ? bytesToBase64(identity.publicKeyRaw) : null;
    this._mySafetyNumber = identity ? safetyNumberOf(identity.publicKeyRaw) : null;
    this._worker = worker;
    this._sendKeyMessage = sendKeyMessage;
    this._switchDelayMs = switchDelayMs;
    this._selfId = null;
    const idx = new Uint16Array(1);
    globalThis.crypto.getRandomValues(idx);
    this._own = { senderIndex: idx[0], generation: 0, step: 0, baseKey: randomBytes(16) };
    this._members = new Map(); // connectionId -> {publicKey, publicKeyBase64, safetyNumber}
    this._held = new Map(); // connectionId -> Map(kid number -> baseKey)
    this._indexOwner = new Map(); // senderIndex -> connectionId
    this._pending = new Map(); // srcId -> [{bytes, at}]
    this._queue = Promise.resolve();
    this._nextId = 1;
    this._requests = new Map();
    this._installed = new WeakSet();
    this.keyMessagesRejected = 0;

    const onMessage = (event) => this._onWorkerMessage(event.data);
    if (typeof worker.addEventListener === 'function') worker.addEventListener('message', onMessage);
    else worker.onmessage = onMessage;

    this.debug = {
      setMarker: (m) => this._request({ type: 'debug-marker', marker: m ?? null }),
      setNullCipher: (on) => this._request({ type: 'debug-null-cipher', on: !!on }),
      // The next n frames sent, as {at, bytes, codec, clear}; with {plaintext: true}
      // each also carries the plaintext frame (test pages only).
      capture: (n, { plaintext = false } = {}) => this._request({ type: 'debug-capture', n, plaintext }),
      captured: async () => (await this._request({ type: 'debug-get-captured' })).frames,
      heldKeys: () => {
        const out = [];
        for (const [connectionId, keys] of this._held) {
          for (const [kid, baseKey] of keys) out.push({ connectionId, kid, baseKey: Uint8Array.from(baseKey), baseKeyHex: hex(baseKey) });
        }
        return out;
      },
      corruptReceiveKeys: () => this._serial(async () => {
        for (const [connectionId, keys] of this._held) {
          // Drop what the worker derived (ratcheted steps) too, then install junk.
          await this._request({ type: 'remove-sender', connectionId });
          for (const kid of [...keys.keys()]) {
            const junk = randomBytes(16);
            keys.set(kid, junk);
            await this._request({ type: 'add-receive-key', connectionId, kid, baseKey: junk });
          }
        }
      }),
      ownKey: () => ({ ...this._own, kid: this._ownKid(), baseKey: Uint8Array.from(this._own.baseKey) }),
    };
  }

  // ---- identity --------------------------------------------------------------------

  /** Our raw 65-byte P-256 public key, base64 (signaling_notify_metadata.e2ee_public_key). */
  get publicKeyBase64() {
    return this._publicKeyBase64;
  }

  get mySafetyNumber() {
    return this._mySafetyNumber;
  }

  /** Safety number of a base64 raw public key (6 groups of 5 digits). */
  safetyNumber(publicKeyBase64) {
    return safetyNumberOf(base64ToBytes(publicKeyBase64));
  }

  get selfId() {
    return this._selfId;
  }

  get senderIndex() {
    return this._own.senderIndex;
  }

  /** Our connection id (from the server's offer). */
  setSelf(connectionId) {
    this._selfId = connectionId;
  }

  // ---- media -------------------------------------------------------------------------

  static hasScriptTransform() {
    return typeof globalThis.RTCRtpScriptTransform === 'function';
  }

  /** Extra RTCPeerConnection configuration: {} with RTCRtpScriptTransform, else {encodedInsertableStreams: true}. */
  static peerConnectionConfig() {
    return E2EE.hasScriptTransform() ? {} : { encodedInsertableStreams: true };
  }

  /**
   * Tells the worker what the server's SDP says about the streams (call after
   * every setRemoteDescription): the codec of each RTP payload type (for frames
   * whose metadata has no mimeType) and the connection that sends each SSRC (for
   * receivers set up before their sender was known).
   */
  describeStreams(sdp) {
    return this._request({ type: 'set-streams', payloadTypes: codecsOfSdp(sdp), ssrcOwners: ssrcOwnersOfSdp(sdp) });
  }

  /** Installs the send transform on an RTCRtpSender (once per sender); kind 'audio' or 'video'. */
  setupSender(sender, kind = null) {
    this._setup(sender, { side: 'send', kind: kind ?? sender?.track?.kind ?? null });
  }

  /** Installs the receive transform on an RTCRtpReceiver (once per receiver). */
  setupReceiver(receiver, senderConnectionId = null) {
    this._setup(receiver, { side: 'receive', senderConnectionId: senderConnectionId ?? null, kind: receiver?.track?.kind ?? null });
  }

  _setup(target, options) {
    if (!target || this._installed.has(target)) return;
    this._installed.add(target);
    if (E2EE.hasScriptTransform()) {
      target.transform = new globalThis.RTCRtpScriptTransform(this._worker, options);
    } else if (typeof target.createEncodedStreams === 'function') {
      const { readable, writable } = target.createEncodedStreams();
      this._worker.postMessage({ type: 'legacy-stream', readable, writable, options }, [readable, writable]);
    } else {
      throw new Error('this browser supports neither RTCRtpScriptTransform nor createEncodedStreams');
    }
  }

  // ---- members and keys ------------------------------------------------------------------

  /**
   * A member we learn of. joinedNow = true for a new joiner (ratchet, send to
   * the joiner only), false for members already there when we joined (send
   * them our current key).
   */
  addMember(connectionId, publicKeyBase64, { joinedNow = false } = {}) {
    return this._serial(async () => {
      if (connectionId === this._selfId) return;
      if (!this._selfId) throw new Error('E2EE.addMember before setSelf');
      const known = this._members.get(connectionId);
      if (known && known.publicKeyBase64 === publicKeyBase64) return;
      const publicKey = await publicKeyFromBase64(publicKeyBase64);
      this._members.set(connectionId, {
        publicKey,
        publicKeyBase64,
        safetyNumber: this.safetyNumber(publicKeyBase64),
      });
      if (joinedNow) {
        if (this._own.step >= 255) {
          await this._freshKey();
        } else {
          this._own = { ...this._own, step: this._own.step + 1, baseKey: await ratchet(this._own.baseKey) };
          await this._sendKeyTo(connectionId);
          await this._setSendKey();
        }
      } else {
        await this._sendKeyTo(connectionId);
      }
      await this._drainPending(connectionId);
    });
  }

  /** They left: fresh key to everybody else, switch after switchDelayMs, forget theirs. */
  removeMember(connectionId) {
    return this._serial(async () => {
      if (connectionId === this._selfId) return;
      const wasKnown = this._members.delete(connectionId) || this._held.has(connectionId);
      this._held.delete(connectionId);
      this._pending.delete(connectionId);
      for (const [idx, conn] of [...this._indexOwner]) if (conn === connectionId) this._indexOwner.delete(idx);
      await this._request({ type: 'remove-sender', connectionId });
      if (wasKnown) await this._freshKey();
    });
  }

  /** Members we know: [{connectionId, publicKeyBase64, safetyNumber}]. */
  members() {
    return [...this._members].map(([connectionId, m]) => ({ connectionId, publicKeyBase64: m.publicKeyBase64, safetyNumber: m.safetyNumber }));
  }

  /**
   * A binary message from the server. Returns true when a key was installed,
   * false when the message was refused (or kept until its sender is known).
   */
  onKeyMessage(bytes) {
    return this._serial(async () => {
      let msg;
      try {
        msg = decodeKeyMessage(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes);
      } catch {
        this.keyMessagesRejected++;
        return false;
      }
      if (this._selfId && msg.dstId !== this._selfId) {
        this.keyMessagesRejected++;
        return false;
      }
      if (!this._selfId || !this._members.has(msg.srcId)) {
        this._keepPending(msg.srcId, msg);
        return false;
      }
      return this._install(msg);
    });
  }

  async stats() {
    const r = await this._request({ type: 'stats' });
    return { ...r.stats, encrypted: r.encrypted, dropped: r.dropped };
  }

  /** Asks every receive transform for a key frame; resolves to how many were asked. */
  async requestKeyFrames() {
    return (await this._request({ type: 'request-key-frames' })).count;
  }

  /** Stops the worker (the page is done). */
  close() {
    this._worker.terminate?.();
  }

  // ---- internals -------------------------------------------------------------------------

  _serial(fn) {
    const run = this._queue.then(fn);
    this._queue = run.catch(() => {});
    return run;
  }

  _ownKid() {
    return Number(makeKid(this._own));
  }

  async _setSendKey() {
    await this._request({ type: 'set-send-key', kid: this._ownKid(), baseKey: Uint8Array.from(this._own.baseKey) });
  }

  async _freshKey() {
    this._own = {
      senderIndex: this._own.senderIndex,
      generation: (this._own.generation + 1) & 0xff,
      step: 0,
      baseKey: randomBytes(16),
    };
    const kid = this._ownKid();
    await Promise.all([...this._members.keys()].map((id) => this._sendKeyTo(id)));
    await sleep(this._switchDelayMs);
    if (this._ownKid() === kid) await this._setSendKey();
  }

  async _sendKeyTo(connectionId) {
    const member = this._members.get(connectionId);
    if (!member) return;
    const payload = encodeSenderKey(this._own);
    const ciphertext = await wrapSenderKey({
      myPrivateKey: this._identity.privateKey,
      theirPublicKey: member.publicKey,
      srcId: this._selfId,
      dstId: connectionId,
      payload,
    });
    this._sendKeyMessage(connectionId, encodeKeyMessage(this._selfId, connectionId, ciphertext));
  }

  _keepPending(srcId, msg) {
    const now = Date.now();
    const list = (this._pending.get(srcId) ?? []).filter((p) => now - p.at < PENDING_TTL_MS);
    list.push({ msg, at: now });
    while (list.length > PENDING_PER_SOURCE) list.shift();
    this._pending.set(srcId, list);
    if (this._pending.size > 256) this._pending.delete(this._pending.keys().next().value);
  }

  async _drainPending(connectionId) {
    const list = this._pending.get(connectionId);
    if (!list) return;
    this._pending.delete(connectionId);
    const now = Date.now();
    for (const p of list) {
      if (now - p.at >= PENDING_TTL_MS) continue;
      if (p.msg.dstId !== this._selfId) continue;
      await this._install(p.msg);
    }
  }

  async _install(msg) {
    const member = this._members.get(msg.srcId);
    let key;
    try {
      const payload = await unwrapSenderKey({
        myPrivateKey: this._identity.privateKey,
        theirPublicKey: member.publicKey,
        srcId: msg.srcId,
        dstId: msg.dstId,
        ciphertext: msg.ciphertext,
      });
      key = decodeSenderKey(payload);
    } catch {
      this.keyMessagesRejected++;
      return false;
    }
    // A sender index belongs to the first connection that used it.
    const owner = this._indexOwner.get(key.senderIndex);
    if (owner && owner !== msg.srcId) {
      this.keyMessagesRejected++;
      return false;
    }
    this._indexOwner.set(key.senderIndex, msg.srcId);
    const kid = Number(makeKid(key));
    let held = this._held.get(msg.srcId);
    if (!held) {
      held = new Map();
      this._held.set(msg.srcId, held);
    }
    held.delete(kid);
    held.set(kid, key.baseKey);
    while (held.size > HELD_PER_MEMBER) held.delete(held.keys().next().value);
    await this._request({ type: 'add-receive-key', connectionId: msg.srcId, kid, baseKey: key.baseKey });
    return true;
  }

  _request(msg) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(id);
        reject(new Error(`e2ee worker did not answer ${msg.type}`));
      }, REQUEST_TIMEOUT_MS);
      this._requests.set(id, { resolve, reject, timer });
      this._worker.postMessage({ ...msg, id });
    });
  }

  _onWorkerMessage(data) {
    if (!data || data.id === undefined) return;
    const r = this._requests.get(data.id);
    if (!r) return;
    this._requests.delete(data.id);
    clearTimeout(r.timer);
    if (data.type === 'error') r.reject(new Error(data.error));
    else r.resolve(data);
  }
}
