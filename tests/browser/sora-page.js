// A minimal Sora-protocol client that runs inside a test page: it connects, applies the
// server's offers and re-offers with the fake camera and microphone attached to the
// mids the server names, answers pings, and exposes what the tests measure.
/* eslint-disable no-undef */
window.hisokaTest = {
  async join(url, connect, constraints = { audio: true, video: true }, degradation = null) {
    const state = { connectionId: null, events: [], closed: null, remote: {} };
    window.hisokaTest.state = state;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    state.pc = pc;
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    state.local = stream;
    pc.ontrack = (e) => {
      const id = e.streams[0] ? e.streams[0].id : null;
      state.remote[e.transceiver.mid] = { id, kind: e.track.kind, track: e.track };
      window.hisokaTest.play(e.track);
    };
    const ws = new WebSocket(url);
    state.ws = ws;
    let chain = Promise.resolve();
    const handle = async (msg) => {
      if (msg.type === 'offer' || msg.type === 're-offer') {
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        if (msg.type === 'offer') {
          state.connectionId = msg.connection_id;
          for (const track of stream.getTracks()) {
            const mid = msg.mid && msg.mid[track.kind];
            const t = mid !== undefined && pc.getTransceivers().find((x) => x.mid === mid);
            if (t) {
              await t.sender.replaceTrack(track);
              t.direction = 'sendonly';
              t.sender.setStreams(stream);
              if (degradation && track.kind === 'video') {
                const params = t.sender.getParameters();
                params.degradationPreference = degradation;
                await t.sender.setParameters(params);
              }
            }
          }
        }
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        let sdp = answer.sdp;
        if (window.hisokaTest.forgeFingerprint) {
          // Tells the server a certificate fingerprint that is not this browser's.
          sdp = sdp.replace(/a=fingerprint:sha-256 [0-9A-F:]+/g,
            'a=fingerprint:sha-256 ' + Array(32).fill('00').join(':'));
        }
        ws.send(JSON.stringify({ type: msg.type === 'offer' ? 'answer' : 're-answer', sdp }));
      } else if (msg.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong' }));
      } else if (msg.type === 'notify') {
        state.events.push(msg.event_type + ':' + msg.connection_id);
      }
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      chain = chain.then(() => handle(msg)).catch((err) => { state.error = String(err); });
    };
    ws.onclose = (e) => { state.closed = { code: e.code, reason: e.reason }; };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    ws.send(JSON.stringify({ type: 'connect', ...connect }));
    const deadline = Date.now() + 10000;
    while (!state.connectionId && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return state.connectionId;
  },

  // Chromium pulls remote audio (and counts its samples) only while it plays.
  play(track) {
    if (track.kind !== 'audio') return;
    const audio = document.createElement('audio');
    audio.srcObject = new MediaStream([track]);
    audio.autoplay = true;
    document.body.appendChild(audio);
    audio.play().catch(() => {});
  },

  // Per remote connection id: decoded video frames, width, audio samples, track state.
  // state: {pc, remote: {mid: {id, kind, track}}, connectionId, closed, error}.
  async stats(state = window.hisokaTest.state) {
    const report = await state.pc.getStats();
    const byMid = {};
    let outbound = null;
    let availableOutgoingBitrate = 0;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') byMid[s.mid] = s;
      if (s.type === 'outbound-rtp' && s.kind === 'video') outbound = s;
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
        availableOutgoingBitrate = s.availableOutgoingBitrate;
      }
    });
    const remote = {};
    for (const [mid, r] of Object.entries(state.remote)) {
      if (!r.id) continue;
      const entry = remote[r.id] || (remote[r.id] = { ended: false });
      const s = byMid[mid] || {};
      if (r.kind === 'video') {
        entry.framesDecoded = s.framesDecoded || 0;
        entry.frameWidth = s.frameWidth || 0;
        entry.videoBytes = s.bytesReceived || 0;
        entry.freezeCount = s.freezeCount || 0;
        entry.nackCount = s.nackCount || 0;
        entry.videoEnded = r.track.readyState === 'ended';
      } else {
        entry.totalSamplesReceived = s.totalSamplesReceived || 0;
        entry.audioBytes = s.bytesReceived || 0;
        entry.audioEnded = r.track.readyState === 'ended';
      }
      entry.ended = !!(entry.videoEnded && entry.audioEnded);
    }
    return {
      connectionId: state.connectionId,
      sentFrameWidth: outbound ? outbound.frameWidth : 0,
      sentBytes: outbound ? outbound.bytesSent : 0,
      framesEncoded: outbound ? outbound.framesEncoded || 0 : 0,
      targetBitrate: outbound ? outbound.targetBitrate || 0 : 0,
      qualityLimitationReason: outbound ? outbound.qualityLimitationReason : null,
      availableOutgoingBitrate,
      remote,
      closed: state.closed,
      error: state.error || null,
      iceState: state.pc.iceConnectionState,
    };
  },

  leave() {
    const state = window.hisokaTest.state;
    state.ws.close(1000);
    state.pc.close();
  },
};
