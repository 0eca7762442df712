// Video statistics of a page whose client is window.sdkTest ({conn: {pc}, remote: {id:
// {tracks}}}): the sora-js-sdk pages of the simulcast and adaptive tests, and the
// client/hisoka.js page of the adaptive test's E2EE variant.

// A publisher's video outbound-rtp by rid ('-' without one).
export function sendStats(page) {
  return page.evaluate(async () => {
    const pc = window.sdkTest.conn.pc;
    const out = {};
    if (!pc) return out;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      out[s.rid ?? '-'] = {
        framesEncoded: s.framesEncoded || 0, keyFramesEncoded: s.keyFramesEncoded || 0,
        frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, active: s.active,
        targetBitrate: s.targetBitrate || 0, bytesSent: s.bytesSent,
        qualityLimitationReason: s.qualityLimitationReason, encoder: s.encoderImplementation,
      };
    });
    return out;
  });
}

// A receiver's video from each sender, by stream id (the sender's connection id): its
// inbound-rtp, found through the mid of the transceiver that carries the track.
export function recvStats(page) {
  return page.evaluate(async () => {
    const t = window.sdkTest;
    const pc = t.conn.pc;
    const out = {};
    if (!pc) return out;
    const byMid = {};
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') byMid[s.mid] = s; });
    const midOfTrack = {};
    for (const tr of pc.getTransceivers()) if (tr.receiver.track) midOfTrack[tr.receiver.track.id] = tr.mid;
    for (const [id, r] of Object.entries(t.remote)) {
      const track = r.tracks.find((x) => x.kind === 'video');
      if (!track) continue;
      const mid = midOfTrack[track.id];
      const s = byMid[mid] || {};
      out[id] = {
        mid, ended: track.readyState === 'ended',
        frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
        framesDecoded: s.framesDecoded || 0, framesReceived: s.framesReceived || 0,
        framesDropped: s.framesDropped || 0, keyFramesDecoded: s.keyFramesDecoded || 0,
        freezeCount: s.freezeCount || 0, totalFreezesDuration: s.totalFreezesDuration || 0,
        pliCount: s.pliCount || 0, nackCount: s.nackCount || 0,
        packetsLost: s.packetsLost || 0, packetsReceived: s.packetsReceived || 0,
      };
    }
    return out;
  });
}
