// e2ee-worker.js — the worker that encrypts and decrypts encoded media frames.
// Load it as a module worker: new Worker(url, { type: 'module' }). One worker
// serves every transform of a page.
//
// Frame paths:
//   RTCRtpScriptTransform: the page sets sender.transform / receiver.transform
//     = new RTCRtpScriptTransform(worker, {side, senderConnectionId}); the
//     worker gets an 'rtctransform' event.
//   Legacy (createEncodedStreams): the page posts
//     {type: 'legacy-stream', readable, writable, options} with the two streams
//     in the transfer list.
// Send side: frame.data = SFrame(header || ct || tag) of the whole frame (no
// clear prefix). Receive side: decrypt; frames without a key ('missing') or
// failing authentication ('failed') are dropped and counted per sender
// connection id.
//
// Page -> worker messages (optionally with an `id`; every reply carries the
// same `id` so the page can await it):
//   {type:'set-send-key', kid, baseKey}                      -> {type:'ack'}
//   {type:'add-receive-key', connectionId, kid, baseKey}     -> {type:'ack'}
//   {type:'remove-sender', connectionId}                     -> {type:'ack'}
//   {type:'stats'} -> {type:'stats', stats:{[connId]:{decrypted,failed,missing}}, encrypted}
//   {type:'debug-marker', marker: string|null}               -> {type:'ack'}
//   {type:'debug-null-cipher', on: bool}                     -> {type:'ack'}
//   {type:'debug-capture', n}                                -> {type:'ack'}
//   {type:'debug-get-captured'} -> {type:'captured', frames:[{at, bytes}]}
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

function runPipe(readable, writable, options) {
  core.pipe(readable, writable, options || {}).catch((e) => {
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
  runPipe(transformer.readable, transformer.writable, transformer.options);
};
