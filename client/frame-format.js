// frame-format.js — which bytes of an encoded frame stay in clear, and how an
// E2EE frame is laid out on the wire. Pure module (no DOM, no WebCrypto): used by
// e2ee-frames.js in the worker and by Node tests.
//
// A receiver without the dependency descriptor (Firefox receiving anything,
// Chromium receiving from Firefox) reads "key frame or not", and for VP8 the
// picture size, from the codec payload header at the start of the frame. That
// header therefore stays in clear and is authenticated as SFrame metadata:
//
//   frame on the wire = clear prefix ‖ SFrame(header ‖ ciphertext ‖ tag)
//   SFrame AAD        = SFrame header ‖ clear prefix        (RFC 9605 §4.4.3)
//
//   codec   clear prefix
//   VP8     10 bytes on key frames (frame tag, start code, width, height),
//           3 on delta frames (frame tag); key frame: (byte 0 & 1) == 0
//           (RFC 6386 §9.1)
//   Opus    1 byte (the TOC byte, RFC 6716 §3.1)
//   H.264   every byte up to the first slice NAL unit (type 1..5), that unit's
//           NAL header and the slice-header bytes holding first_mb_in_slice,
//           slice_type and pic_parameter_set_id (ITU-T H.264 §7.3.3); the SFrame
//           part after it gets emulation prevention (0x03 after 00 00 when the
//           next byte is 0..3, and after a final 00 00) so it holds no start code
//   other   nothing (VP9 and AV1 frames are encrypted whole)
//
// Both ends compute the prefix from the frame's own first bytes, so the length
// is not sent. A frame shorter than its prefix (a VP8 key frame under 10 bytes,
// a delta frame under 3, an empty Opus frame, H.264 without a parsable slice)
// is not valid media: the sender drops it instead of sending anything in clear.

export const VP8_KEY_PREFIX = 10;
export const VP8_DELTA_PREFIX = 3;
export const OPUS_PREFIX = 1;

const CODECS = new Set(['vp8', 'vp9', 'av1', 'h264', 'opus']);

/** 'video/VP8' -> 'vp8' (also 'h264', 'opus', 'vp9', 'av1'); anything else -> null. */
export function codecOfMimeType(mimeType) {
  if (typeof mimeType !== 'string') return null;
  const name = mimeType.toLowerCase().replace(/^(audio|video)\//, '');
  return CODECS.has(name) ? name : null;
}

/**
 * Payload type -> codec from an SDP's a=rtpmap lines:
 * codecsOfSdp(sdp) -> {96: 'vp8', 111: 'opus', ...} (codecs we know only).
 */
export function codecsOfSdp(sdp) {
  const out = {};
  for (const m of String(sdp).matchAll(/^a=rtpmap:(\d+) ([^/\s]+)\//gm)) {
    const codec = codecOfMimeType(m[2]);
    if (codec) out[Number(m[1])] = codec;
  }
  return out;
}

// H.264 (ITU-T H.264 §7.3.1, §7.4.1): Exp-Golomb reader over the bytes of a NAL
// unit that skips emulation prevention bytes (00 00 03 -> 00 00). lastIndex is
// the index of the byte that held the last bit read.
class NalBitReader {
  constructor(bytes, start) {
    this.bytes = bytes;
    this.pos = start;
    this.zeros = 0;
    this.current = 0;
    this.bitsLeft = 0;
    this.lastIndex = start - 1;
  }

  bit() {
    if (this.bitsLeft === 0) {
      if (this.pos >= this.bytes.length) return -1;
      if (this.zeros >= 2 && this.bytes[this.pos] === 3) {
        this.pos++;
        this.zeros = 0;
        if (this.pos >= this.bytes.length) return -1;
      }
      this.current = this.bytes[this.pos];
      this.zeros = this.current === 0 ? this.zeros + 1 : 0;
      this.lastIndex = this.pos++;
      this.bitsLeft = 8;
    }
    this.bitsLeft--;
    return (this.current >> this.bitsLeft) & 1;
  }

  // ue(v), §9.1; -1 when the bytes end first or the code is longer than 32 bits.
  ue() {
    let zeros = 0;
    for (;;) {
      const b = this.bit();
      if (b < 0) return -1;
      if (b === 1) break;
      if (++zeros > 31) return -1;
    }
    let v = 0;
    for (let i = 0; i < zeros; i++) {
      const b = this.bit();
      if (b < 0) return -1;
      v = v * 2 + b;
    }
    return 2 ** zeros - 1 + v;
  }
}

// Annex B byte stream: the clear prefix ends after the first slice's
// pic_parameter_set_id. -1 when there is no start code, no slice or the slice
// header is cut short.
function h264ClearLength(b) {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] !== 0 || b[i + 1] !== 0 || b[i + 2] !== 1) continue;
    const header = i + 3;
    const type = b[header] & 0x1f;
    if (type < 1 || type > 5) {
      i = header;
      continue;
    }
    const r = new NalBitReader(b, header + 1);
    const firstMb = r.ue();
    const sliceType = r.ue();
    const ppsId = r.ue();
    if (firstMb < 0 || sliceType < 0 || sliceType > 9 || ppsId < 0 || ppsId > 255) return -1;
    return r.lastIndex + 1;
  }
  return -1;
}

/**
 * clearLength(codec, frame) -> how many leading bytes of frame stay in clear:
 * 0 for codecs without a clear prefix (null, 'vp9', 'av1'), -1 when the frame is
 * shorter than its prefix (drop it). Works on the plaintext frame and on the
 * wire frame alike: the prefix is the same bytes in both.
 */
export function clearLength(codec, frame) {
  switch (codec) {
    case 'vp8': {
      if (frame.length === 0) return -1;
      const n = (frame[0] & 1) === 0 ? VP8_KEY_PREFIX : VP8_DELTA_PREFIX;
      return frame.length >= n ? n : -1;
    }
    case 'opus':
      return frame.length >= OPUS_PREFIX ? OPUS_PREFIX : -1;
    case 'h264':
      return h264ClearLength(frame);
    default:
      return 0;
  }
}

function trailingZeros(bytes) {
  let n = 0;
  for (let i = bytes.length - 1; i >= 0 && n < 2 && bytes[i] === 0; i--) n++;
  return n;
}

/**
 * H.264 emulation prevention over bytes that follow `before` in the same NAL
 * unit: inserts 0x03 after every 00 00 that is followed by 00..03 or ends the
 * data. The result holds no start code, whatever the input.
 */
export function escapeH264(bytes, before = new Uint8Array(0)) {
  const out = new Uint8Array(bytes.length + Math.ceil(bytes.length / 2) + 1);
  let n = 0;
  let zeros = trailingZeros(before);
  for (const b of bytes) {
    if (zeros >= 2 && b <= 3) {
      out[n++] = 3;
      zeros = 0;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (zeros >= 2) out[n++] = 3;
  return out.slice(0, n);
}

/** Inverse of escapeH264: drops every 0x03 that follows 00 00. */
export function unescapeH264(bytes, before = new Uint8Array(0)) {
  const out = new Uint8Array(bytes.length);
  let n = 0;
  let zeros = trailingZeros(before);
  for (const b of bytes) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.slice(0, n);
}

/** The wire frame for a clear prefix and an SFrame (header ‖ ciphertext ‖ tag). */
export function joinFrame(codec, prefix, sframe) {
  const body = codec === 'h264' ? escapeH264(sframe, prefix) : sframe;
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

/**
 * splitFrame(codec, wire) -> {prefix, sframe}, or null when the wire frame is
 * shorter than its clear prefix. prefix is a view into wire.
 */
export function splitFrame(codec, wire) {
  const n = clearLength(codec, wire);
  if (n < 0) return null;
  const prefix = wire.subarray(0, n);
  const rest = wire.subarray(n);
  return { prefix, sframe: codec === 'h264' ? unescapeH264(rest, prefix) : rest };
}
