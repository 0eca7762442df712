// hisoka's browser client: Sora-compatible signaling over WebSocket, one
// RTCPeerConnection, and (with e2ee) end-to-end encryption of every frame through
// ./e2ee.js. Plain ES module, no build step.
//
//   const client = new HisokaClient('ws://host:5000/signaling', { channelId: 'room', e2ee: true });
//   client.addEventListener('track', (e) => show(e.detail.connectionId, e.detail.stream));
//   await client.connect(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
//
// Events (CustomEvent, details in `detail`): 'connected' {connectionId}, 'track'
// {connectionId, stream, track}, 'member-joined' {connectionId, safetyNumber},
// 'member-left' {connectionId}, 'simulcast-switched' (the notify), 'closed' {code, reason},
// 'error' {message}.
//
// simulcast: true publishes the video as the server's simulcast encodings (r0 smallest ..
// r2, offer.encodings); simulcastRid ('r0'..'r2') is the layer received of others'
// simulcast video (default: the best). A receiver's layer can be changed through the
// server's API (README, Simulcast); each change comes as a 'simulcast-switched' event
// with the server's notify.
//
// e2eeProtocol: 'mls' (with e2ee: true) joins an MLS channel (docs/protocol.md §6): keys
// come from an MLS group whose delivery service is the server, the roster and the
// verification code from the group state. Then 'roster' events carry mls-roster.js's
// update ({epoch, code, added, removed, credentialChanged, banner, roster}), and
// member-joined/member-left still follow the server's notify (for display only).
import { E2EE } from './e2ee.js';
import { E2EEMls } from './e2ee-mls.js';

export class HisokaClient extends EventTarget {
  // videoCodecType: 'VP8', 'H264', 'VP9' or 'AV1' for `connect`; null lets the
  // server choose. With e2ee the default is VP8, whose header stays in clear
  // (frame-format.js: so do H.264's; VP9 and AV1 are encrypted whole).
  constructor(signalingUrl, { channelId, role = 'sendrecv', e2ee = false, metadata = null,
    notifyMetadata = {}, videoCodecType = e2ee ? 'VP8' : null, e2eeProtocol = null,
    simulcast = false, simulcastRid = null } = {}) {
    super();
    this.signalingUrl = signalingUrl;
    this.channelId = channelId;
    this.role = role;
    this.useE2EE = e2ee;
    this.e2eeProtocol = e2ee && e2eeProtocol === 'mls' ? 'mls' : null;
    this.metadata = metadata;
    this.notifyMetadata = notifyMetadata;
    this.videoCodecType = videoCodecType;
    this.simulcast = simulcast;
    this.simulcastRid = simulcastRid;
    this.encodings = null; // offer.encodings, when the server takes simulcast
    this.connectionId = null;
    this.members = new Map(); // connectionId -> { safetyNumber, publicKey }
    this.remoteStreams = new Map(); // connectionId -> MediaStream
    this.e2ee = null;
    this.pc = null;
    this.ws = null;
    this._queue = Promise.resolve();
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // Connects, publishes localStream (unless recvonly) and resolves once the server's
  // offer is answered.
  async connect(localStream = null) {
    this.localStream = localStream;
    if (this.e2eeProtocol === 'mls') {
      this.e2ee = await E2EEMls.create({
        sendBinary: (bytes) => this._sendBinary(bytes),
        onRoster: (update) => this._emit('roster', update),
      });
    } else if (this.useE2EE) {
      this.e2ee = await E2EE.create({
        sendKeyMessage: (dst, bytes) => this._sendBinary(bytes),
      });
    }
    this.pc = new RTCPeerConnection({
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
      ...(this.useE2EE ? E2EE.peerConnectionConfig() : {}),
    });
    this.pc.ontrack = (e) => this._onTrack(e);
    this.ws = new WebSocket(this.signalingUrl);
    this.ws.binaryType = 'arraybuffer';
    const answered = new Promise((resolve, reject) => {
      this._answered = resolve;
      this._failed = reject;
    });
    this.ws.onmessage = (e) => {
      // MLS messages keep their own order (MlsMember's queue) and need nothing from the
      // SDP exchange: they do not wait behind an offer being applied, nor it behind them.
      if (typeof e.data !== 'string' && this.e2eeProtocol && this.e2ee) {
        this.e2ee.onKeyMessage(new Uint8Array(e.data)).catch((err) => {
          this._emit('error', { message: String(err && err.message ? err.message : err) });
        });
        return;
      }
      this._queue = this._queue.then(() => this._onMessage(e.data)).catch((err) => {
        this._emit('error', { message: String(err && err.message ? err.message : err) });
      });
    };
    this.ws.onclose = (e) => {
      this._emit('closed', { code: e.code, reason: e.reason });
      this._failed(new Error(`signaling closed: ${e.code} ${e.reason}`));
    };
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error('cannot open the signaling WebSocket'));
    });
    const notifyMetadata = { ...this.notifyMetadata };
    if (this.e2ee && !this.e2eeProtocol) notifyMetadata.e2ee_public_key = this.e2ee.publicKeyBase64;
    this._send({
      type: 'connect',
      role: this.role,
      channel_id: this.channelId,
      multistream: true,
      e2ee: this.useE2EE,
      ...(this.e2eeProtocol ? { e2ee_protocol: this.e2eeProtocol } : {}),
      audio: true,
      video: this.videoCodecType ? { codec_type: this.videoCodecType } : true,
      metadata: this.metadata,
      signaling_notify_metadata: notifyMetadata,
      sora_client: 'hisoka client',
      ...(this.simulcast ? { simulcast: true } : {}),
      ...(this.simulcastRid ? { simulcast_rid: this.simulcastRid } : {}),
    });
    await answered;
    return this.connectionId;
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  _sendBinary(bytes) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  _onTrack(e) {
    const connectionId = e.streams[0] ? e.streams[0].id : null;
    if (!connectionId || connectionId === this.connectionId) return;
    if (this.e2ee) this.e2ee.setupReceiver(e.receiver, connectionId);
    let stream = this.remoteStreams.get(connectionId);
    if (!stream) {
      stream = new MediaStream();
      this.remoteStreams.set(connectionId, stream);
    }
    stream.addTrack(e.track);
    e.track.addEventListener('ended', () => stream.removeTrack(e.track));
    this._emit('track', { connectionId, stream, track: e.track, mid: e.transceiver.mid });
  }

  async _onMessage(data) {
    if (typeof data !== 'string') {
      if (this.e2ee) await this.e2ee.onKeyMessage(new Uint8Array(data));
      return;
    }
    const msg = JSON.parse(data);
    switch (msg.type) {
      case 'offer':
        this.connectionId = msg.connection_id;
        this.encodings = msg.simulcast && Array.isArray(msg.encodings) ? msg.encodings : null;
        if (this.e2ee) {
          // MLS: this sends our key package; not awaited, so the answer is not delayed.
          const started = this.e2ee.setSelf(msg.connection_id);
          if (started && started.catch) started.catch((err) => this._emit('error', { message: String(err.message || err) }));
        }
        // The server's TURN servers (time-limited credentials), as Sora's SDKs take them:
        // set before the first setRemoteDescription, so gathering uses them.
        if (msg.config && Array.isArray(msg.config.iceServers) && msg.config.iceServers.length) {
          this.pc.setConfiguration({
            ...this.pc.getConfiguration(),
            iceServers: msg.config.iceServers,
            iceTransportPolicy: msg.config.iceTransportPolicy || 'all',
          });
        }
        await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        this._setupReceivers(msg.sdp);
        await this._attachLocal(msg.mid || {});
        await this._answer('answer');
        this._answered();
        this._emit('connected', { connectionId: this.connectionId });
        break;
      case 're-offer':
      case 'update':
        await this.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        this._setupReceivers(msg.sdp);
        await this._answer(msg.type === 'update' ? 'update' : 're-answer');
        break;
      case 'ping':
        this._send({ type: 'pong' });
        break;
      case 'notify':
        await this._onNotify(msg);
        break;
      default:
        break;
    }
  }

  // E2EE: every receiver gets its transform right after setRemoteDescription, with
  // nothing awaited in between. Chromium 156 leaves a transform unused when it is set
  // later: on a sender once anything was awaited after setRemoteDescription, on a
  // receiver that existed before its track was announced (the idle sections of a
  // recvonly member alone in its channel). Receivers set up in ontrack know their
  // sender; the worker maps the others by SSRC.
  _setupReceivers(sdp) {
    if (!this.e2ee) return;
    for (const t of this.pc.getTransceivers()) {
      if (t.currentDirection !== 'stopped') this.e2ee.setupReceiver(t.receiver);
    }
    this.e2ee.describeStreams(sdp).catch((err) => this._emit('error', { message: String(err.message || err) }));
  }

  async _attachLocal(mids) {
    if (!this.localStream) return;
    const pairs = [];
    for (const track of this.localStream.getTracks()) {
      const mid = mids[track.kind];
      const t = mid !== undefined && this.pc.getTransceivers().find((x) => x.mid === mid);
      if (t) pairs.push([t, track]);
    }
    // Every transform goes on before any track: Chromium 156 does not route the frames
    // of a sender through a transform set after tracks started flowing.
    if (this.e2ee) for (const [t, track] of pairs) this.e2ee.setupSender(t.sender, track.kind);
    for (const [t, track] of pairs) {
      if (track.kind === 'video' && this.encodings) await this._setEncodings(t.sender);
      await t.sender.replaceTrack(track);
      t.direction = 'sendonly';
      t.sender.setStreams(this.localStream);
    }
  }

  // Simulcast: the offer's a=simulcast:recv gave the sender one encoding per rid; the
  // server's encodings (scaleResolutionDownBy, maxBitrate, active, ...) go onto them by
  // rid, as Sora's SDKs do.
  async _setEncodings(sender) {
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    params.encodings = params.encodings.map((e) => {
      const wanted = this.encodings.find((w) => w.rid === e.rid);
      return wanted ? { ...e, ...wanted } : e;
    });
    await sender.setParameters(params);
  }

  async _answer(type) {
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this._send({ type, sdp: answer.sdp });
  }

  async _onNotify(msg) {
    const id = msg.connection_id;
    if (msg.event_type === 'simulcast.switched') {
      this._emit('simulcast-switched', msg);
      return;
    }
    if (msg.event_type === 'connection.created') {
      if (id === this.connectionId) {
        // Our own event lists everyone already here: send each of them our key.
        for (const m of msg.data || []) await this._addMember(m.connection_id, m.metadata, false);
      } else {
        await this._addMember(id, msg.metadata, true);
      }
    } else if (msg.event_type === 'connection.destroyed' && id !== this.connectionId) {
      this.members.delete(id);
      if (this.e2ee) await this.e2ee.removeMember(id);
      this._emit('member-left', { connectionId: id });
    }
  }

  async _addMember(id, metadata, joinedNow) {
    const publicKey = metadata && metadata.e2ee_public_key;
    const member = { publicKey: publicKey || null, safetyNumber: null };
    if (this.e2ee && publicKey) {
      member.safetyNumber = await this.e2ee.safetyNumber(publicKey);
      await this.e2ee.addMember(id, publicKey, { joinedNow });
    }
    this.members.set(id, member);
    this._emit('member-joined', { connectionId: id, safetyNumber: member.safetyNumber });
  }

  // Our own safety number (E2EE only); in an MLS channel the group's verification code.
  async safetyNumber() {
    if (this.e2eeProtocol) return this.e2ee ? this.e2ee.verificationCode() : null;
    return this.e2ee ? this.e2ee.safetyNumber(this.e2ee.publicKeyBase64) : null;
  }

  // Per sender: {decrypted, failed, missing} and a status string.
  async e2eeStatus() {
    if (!this.e2ee) return {};
    const stats = await this.e2ee.stats();
    const out = {};
    for (const id of this.members.keys()) {
      const s = stats[id] || { decrypted: 0, failed: 0, missing: 0 };
      const prev = (this._lastStats || {})[id] || { decrypted: 0, failed: 0, missing: 0 };
      let status = 'key missing';
      if (s.decrypted > prev.decrypted) status = 'decrypting';
      else if (s.failed > prev.failed) status = 'failing';
      else if (s.missing > prev.missing || s.decrypted === 0) status = 'key missing';
      else status = 'idle';
      out[id] = { ...s, status };
    }
    this._lastStats = stats;
    return out;
  }

  disconnect() {
    this._send({ type: 'disconnect', reason: 'NO-ERROR' });
    if (this.ws) this.ws.close(1000);
    if (this.pc) this.pc.close();
  }
}
