// e2ee-worker.js — the worker that encrypts and decrypts encoded media frames.
// Load it as a module worker: new Worker(url, { type: 'module' }). One worker
// serves every transform of a page.
//
// Frame paths:
//   RTCRtpScriptTransform: the page sets sender.transform / receiver.transform
//     = new RTCRtpScriptTransform(worker, {side, senderConnectionId, kind}); the
//     worker gets an 'rtctransform' event.
//   Legacy (createEncodedStreams): the page posts
//     {type: 'legacy-stream', readable, writable, options} with the two streams
//     in the transfer list.
// Send side: frame.data = clear codec header ‖ SFrame(header ‖ ct ‖ tag), the
// codec header authenticated as SFrame metadata (see frame-format.js: VP8 10/3
// bytes, Opus 1, H.264 up to the first slice header's PPS id). The codec comes
// from the frame's metadata (mimeType, else payloadType via set-streams).
// Receive side: decrypt; frames without a key ('missing') or failing
// authentication ('failed') are dropped and counted per sender connection id.
// When a key arrives for a receive transform that dropped frames for want of it,
// that transform asks for a key frame (sendKeyFrameRequest).
//
// Page -> worker messages (optionally with an `id`; every reply carries the
// same `id` so the page can await it):
//   {type:'set-send-key', kid, baseKey}                      -> {type:'ack'}
//   {type:'add-receive-key', connectionId, kid, baseKey}     -> {type:'ack'}
//   {type:'remove-sender', connectionId}                     -> {type:'ack'}
//   {type:'set-streams', payloadTypes:{[pt]: 'vp8'|'opus'|...},
//    ssrcOwners:{[ssrc]: connectionId}}                       -> {type:'ack'}
//   {type:'request-key-frames'} -> {type:'key-frames-requested', count}
//   {type:'stats'} -> {type:'stats', stats:{[connId]:{decrypted,failed,missing[,epochBits,epochsAt]}},
//                      encrypted, dropped[, mls]}
//   {type:'debug-marker', marker: string|null}               -> {type:'ack'}
//   {type:'debug-null-cipher', on: bool}                     -> {type:'ack'}
//   {type:'debug-capture', n, plaintext?: bool}              -> {type:'ack'}
//   {type:'debug-get-captured'} -> {type:'captured', frames:[{at, bytes, codec, clear, plaintext?}]}
// kid may be a number or a bigint; baseKey a Uint8Array or ArrayBuffer.
// Failures reply {type:'error', error}.

import { FrameCrypto } from './e2ee-frames.js';

const core = new FrameCrypto();

function reply(id, body) {
  if (id === undefined) {
    self.postMessage(body);
  } else {
    self.postMessage({ ...body, id });
  }
}

function runPipe(readable, writable, options, transformer = null) {
  core.pipe(readable, writable, options || {}, transformer).catch((e) => {
    self.postMessage({ type: 'pipe-closed', side: options?.side, error: String(e?.message ?? e) });
  });
}

self.onmessage = async (event) => {
  const msg = event.data;
  if (msg?.type === 'legacy-stream') {
    runPipe(msg.readable, msg.writable, msg.options);
    return;
  }
  try {
    const out = await core.handleMessage(msg);
    if (out) reply(msg?.id, out);
  } catch (e) {
    reply(msg?.id, { type: 'error', error: String(e?.message ?? e) });
  }
};

// RTCRtpScriptTransform (Chromium, Safari, Firefox).
self.onrtctransform = (event) => {
  const transformer = event.transformer;
  runPipe(transformer.readable, transformer.writable, transformer.options, transformer);
};
