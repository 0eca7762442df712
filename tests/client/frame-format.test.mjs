// Unit tests for client/frame-format.js and the clear codec prefix in
// client/e2ee-frames.js: which bytes stay in clear per codec, that they are
// authenticated (RFC 9605 metadata), H.264 emulation prevention, and frames
// shorter than their prefix. Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  clearLength,
  codecOfMimeType,
  codecsOfSdp,
  escapeH264,
  unescapeH264,
  joinFrame,
  splitFrame,
} from '../../client/frame-format.js';
import { FrameCrypto } from '../../client/e2ee-frames.js';
import { decodeHeader, deriveKeyAndSalt, encrypt, makeKid } from '../../client/sframe.js';

const h = (s) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const cat = (...parts) => Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))));
const CONN = 'AAAAAAAAAAAAAAAAAAAAAAAAAA';

// First bytes of frames Chromium 156 encoded from its fake camera (640x480).
// VP8 key frame (RFC 6386 §9.1): frame tag 3 bytes (byte 0 bit 0 = 0: key frame),
// start code 9d 01 2a, width 0x0280 = 640, height 0x01e0 = 480, then compressed data.
const VP8_KEY = cat(h('50 6c 00  9d 01 2a  80 02  e0 01'), h('39 61 00 00 00 00 01 02 03'), randomBytes(400));
// VP8 delta frame: frame tag only (byte 0 bit 0 = 1).
const VP8_DELTA = cat(h('f1 1f 00'), h('e4 c8 df bc fb 47 a7'), randomBytes(200));
// Opus: TOC byte (config 15, stereo 0, one frame), then the frame.
const OPUS = cat(h('78'), h('0b e4 c1 36 ec c5 8d 8c 49 46'), randomBytes(20));
// H.264 key frame (Annex B): SPS, PPS, then an IDR slice whose header starts
// b8 = 1 011 1 ...: first_mb_in_slice 0, slice_type 2 (I), pic_parameter_set_id 0.
const H264_SPS_PPS = h(`00 00 00 01 67 42 c0 1f 8c 8d 40 50 1e d3 50 60 60 60 78 44 23 50
                        00 00 00 01 68 ce 3c 80`);
const H264_IDR_HEAD = h('00 00 00 01 65 b8');
// Body with start codes and zero runs in it (as a second slice would bring).
const H264_IDR_BODY = cat(h('00 04 00 00 05 38 8c 50 00 00 00 01 65 88 00 00 03 00 00'), randomBytes(300), h('00 00'));
const H264_KEY = cat(H264_SPS_PPS, H264_IDR_HEAD, H264_IDR_BODY);
// H.264 delta frame: one non-IDR slice, header e0 = 1 1 1 ...: 0, P (0), PPS 0.
const H264_DELTA = cat(h('00 00 00 01 61 e0'), h('00 40 00 be 40 53 b7 81 42 27 5a aa aa ff ff ff ff'), randomBytes(100));

const hasStartCode = (b) => {
  for (let i = 0; i + 2 < b.length; i++) if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] <= 2) return true;
  return false;
};

async function pair() {
  const a = new FrameCrypto();
  const b = new FrameCrypto();
  const kid = Number(makeKid({ senderIndex: 0x1234, generation: 0, step: 0 }));
  const key = new Uint8Array(16).fill(7);
  await a.handleMessage({ type: 'set-send-key', kid, baseKey: key });
  await b.handleMessage({ type: 'add-receive-key', connectionId: CONN, kid, baseKey: key });
  return { a, b, kid, key };
}

test('codec names from mimeType and from the SDP hisoka offers', () => {
  assert.equal(codecOfMimeType('video/VP8'), 'vp8');
  assert.equal(codecOfMimeType('audio/opus'), 'opus');
  assert.equal(codecOfMimeType('video/H264'), 'h264');
  assert.equal(codecOfMimeType('video/rtx'), null);
  assert.equal(codecOfMimeType(undefined), null);
  const sdp = [
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 102 103',
    'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96',
    'a=rtpmap:98 VP9/90000', 'a=rtpmap:100 H264/90000', 'a=rtpmap:102 AV1/90000',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=rtpmap:111 opus/48000/2', '',
  ].join('\r\n');
  assert.deepEqual(codecsOfSdp(sdp), { 96: 'vp8', 98: 'vp9', 100: 'h264', 102: 'av1', 111: 'opus' });
});

test('clear prefix length per codec: VP8 10/3, Opus 1, H.264 through the PPS id, others 0', () => {
  assert.equal(clearLength('vp8', VP8_KEY), 10);
  assert.equal(clearLength('vp8', VP8_DELTA), 3);
  assert.equal(clearLength('opus', OPUS), 1);
  assert.equal(clearLength('h264', H264_KEY), H264_SPS_PPS.length + H264_IDR_HEAD.length);
  assert.equal(clearLength('h264', H264_DELTA), 6);
  for (const codec of [null, 'vp9', 'av1']) assert.equal(clearLength(codec, VP8_KEY), 0);
  // A longer slice header: first_mb_in_slice 200 (ue: 0000000 11001001), slice_type 7
  // (0001000), pps id 3 (00100): 27 bits in 01 92 20 90.
  assert.equal(clearLength('h264', h('00 00 01 25  01 92 20 90  ff ee')), 8);
  // Emulation prevention inside the slice header: first_mb_in_slice 2^23 - 1 (23 zero
  // bits, 1, 23 zero bits), slice_type 0, pps id 0: RBSP 00 00 01 00 00 01 80, escaped
  // 00 00 03 01 00 00 03 01 80.
  assert.equal(clearLength('h264', h('00 00 01 21  00 00 03 01 00 00 03 01 80  ff ee')), 13);
  // slice_type 10 (0001011) is out of range.
  assert.equal(clearLength('h264', h('00 00 01 21  8b 80')), -1);
});

test('frames shorter than their prefix, and H.264 without a slice, have no valid prefix', () => {
  assert.equal(clearLength('vp8', new Uint8Array(0)), -1);
  assert.equal(clearLength('vp8', VP8_KEY.subarray(0, 9)), -1);
  assert.equal(clearLength('vp8', VP8_KEY.subarray(0, 10)), 10, 'exactly the prefix is fine');
  assert.equal(clearLength('vp8', VP8_DELTA.subarray(0, 2)), -1);
  assert.equal(clearLength('opus', new Uint8Array(0)), -1);
  assert.equal(clearLength('h264', H264_SPS_PPS), -1, 'parameter sets only');
  assert.equal(clearLength('h264', h('65 b8 00 11 22')), -1, 'no start code');
  assert.equal(clearLength('h264', h('00 00 00 01 65')), -1, 'no slice header');
  assert.equal(clearLength('h264', h('00 00 01 65 00 00')), -1, 'slice header cut short');
  assert.equal(clearLength(null, new Uint8Array(0)), 0);
});

test('H.264 emulation prevention: round trip, no start code, any zeros before', () => {
  const cases = [
    h(''), h('00'), h('00 00'), h('00 00 00'), h('00 00 01'), h('00 00 03'), h('00 00 03 03'),
    h('00 00 00 00 00 00'), h('01 00 00 02 00 00 04'), Uint8Array.from({ length: 512 }, (_, i) => (i % 5 === 0 ? 1 : 0)),
  ];
  for (let i = 0; i < 200; i++) {
    const r = randomBytes(64);
    for (let j = 0; j < 64; j++) if (r[j] < 160) r[j] = r[j] & 3; // many zeros and small bytes
    cases.push(Uint8Array.from(r));
  }
  for (const before of [h(''), h('01'), h('01 00'), h('00 00'), h('65 00 00')]) {
    for (const data of cases) {
      const esc = escapeH264(data, before);
      assert.deepEqual(unescapeH264(esc, before), data, `round trip of ${Buffer.from(data).toString('hex')}`);
      const joined = cat(before, esc);
      assert.ok(!hasStartCode(joined.subarray(Math.max(0, before.length - 2))),
        `no 00 00 0x in ${Buffer.from(joined).toString('hex')}`);
      assert.ok(!(joined.length >= 2 && joined.at(-1) === 0 && joined.at(-2) === 0), 'does not end in 00 00');
    }
  }
  assert.deepEqual(escapeH264(h('00 00 01 00 00 00 00 00 ff')), h('00 00 03 01 00 00 03 00 00 03 00 ff'));
  assert.deepEqual(escapeH264(h('00 00')), h('00 00 03'));
});

test('wire format: clear prefix, then an RFC 9605 SFrame whose metadata is the prefix', async () => {
  for (const [codec, pt] of [['vp8', VP8_KEY], ['vp8', VP8_DELTA], ['opus', OPUS], ['h264', H264_KEY], ['h264', H264_DELTA]]) {
    const { a, b, kid, key } = await pair();
    const n = clearLength(codec, pt);
    const wire = await a.encodeFrame(pt, codec);
    assert.deepEqual(wire.subarray(0, n), pt.subarray(0, n), `${codec}: prefix in clear`);
    const { prefix, sframe } = splitFrame(codec, wire);
    assert.equal(prefix.length, n);
    // Exactly RFC 9605 encryption with the prefix as metadata (AAD = header ‖ prefix).
    const hdr = decodeHeader(sframe);
    assert.equal(hdr.kid, BigInt(kid));
    const ctx = await deriveKeyAndSalt(key, kid);
    assert.deepEqual(await encrypt(ctx, hdr.kid, hdr.ctr, pt.subarray(n), prefix), sframe, `${codec}: SFrame with metadata = prefix`);
    assert.deepEqual(joinFrame(codec, prefix, sframe), wire);
    // Nothing of the rest shows: no 8-byte run of the plaintext after the prefix.
    const body = Buffer.from(pt.subarray(n));
    const w = Buffer.from(wire);
    for (let i = 0; i + 8 <= body.length; i += 4) {
      const run = body.subarray(i, i + 8);
      if (run.every((x) => x === run[0])) continue; // the escaped ciphertext may hold 00 00 03 ...
      assert.ok(!w.includes(run, n), `${codec}: plaintext bytes ${i}.. are not on the wire`);
    }
    if (codec === 'h264') {
      assert.ok(!hasStartCode(wire.subarray(n - 2)), 'no start code after the prefix');
      assert.equal(clearLength('h264', wire), n, 'the receiver finds the same prefix');
    }
    assert.deepEqual(await b.decodeFrame(wire, CONN, codec), pt, `${codec}: round trip`);
  }
});

test('tampering with any clear prefix byte makes decryption fail', async () => {
  for (const [codec, pt] of [['vp8', VP8_KEY], ['vp8', VP8_DELTA], ['opus', OPUS], ['h264', H264_KEY], ['h264', H264_DELTA]]) {
    const { a, b } = await pair();
    const n = clearLength(codec, pt);
    const wire = await a.encodeFrame(pt, codec);
    let failed = 0;
    for (let i = 0; i < n; i++) {
      for (const flip of [0x01, 0x80]) {
        const bad = Uint8Array.from(wire);
        bad[i] ^= flip;
        assert.equal(await b.decodeFrame(bad, CONN, codec), null, `${codec}: byte ${i} ^ ${flip}`);
        // Same prefix length (every byte but VP8's key-frame bit and H.264's
        // structure): the SFrame header is intact, so authentication is what fails.
        if (clearLength(codec, bad) === n) failed++;
      }
    }
    const s = (await b.handleMessage({ type: 'stats' })).stats[CONN];
    assert.equal(s.decrypted, 0);
    assert.ok(s.failed >= failed && failed > 0, `${codec}: ${failed} counted as failed`);
    assert.deepEqual(await b.decodeFrame(wire, CONN, codec), pt, 'the untouched frame still decrypts');
  }
  // Flipping VP8's key-frame bit changes the prefix length: still refused.
  const { a, b } = await pair();
  const wire = await a.encodeFrame(VP8_DELTA, 'vp8');
  const bad = Uint8Array.from(wire);
  bad[0] ^= 1;
  assert.equal(clearLength('vp8', bad), 10);
  assert.equal(await b.decodeFrame(bad, CONN, 'vp8'), null);
});

test('a receiver that reads the frame as another codec does not decrypt it', async () => {
  const { a, b } = await pair();
  const wire = await a.encodeFrame(VP8_DELTA, 'vp8');
  assert.equal(await b.decodeFrame(wire, CONN, null), null);
  assert.equal(await b.decodeFrame(wire, CONN, 'opus'), null);
  assert.deepEqual(await b.decodeFrame(wire, CONN, 'vp8'), VP8_DELTA);
});

test('frames shorter than their prefix are dropped by the sender, refused by the receiver', async () => {
  const { a, b } = await pair();
  await a.handleMessage({ type: 'debug-capture', n: 10 });
  for (const [codec, pt] of [['vp8', VP8_KEY.subarray(0, 9)], ['vp8', VP8_DELTA.subarray(0, 2)], ['vp8', new Uint8Array(0)],
    ['opus', new Uint8Array(0)], ['h264', H264_SPS_PPS]]) {
    assert.equal(await a.encodeFrame(pt, codec), null, `${codec} ${pt.length} bytes: nothing sent`);
  }
  const s = await a.handleMessage({ type: 'stats' });
  assert.equal(s.dropped, 5);
  assert.equal(s.encrypted, 0);
  assert.equal((await a.handleMessage({ type: 'debug-get-captured' })).frames.length, 0, 'nothing captured either');
  // Exactly the prefix: an SFrame of an empty body.
  const wire = await a.encodeFrame(VP8_KEY.subarray(0, 10), 'vp8');
  assert.equal(wire.length, 10 + decodeHeader(wire.subarray(10)).length + 16);
  assert.deepEqual(await b.decodeFrame(wire, CONN, 'vp8'), VP8_KEY.subarray(0, 10));
  // Receiver: a wire frame cut inside its prefix, or right after it.
  assert.equal(await b.decodeFrame(wire.subarray(0, 5), CONN, 'vp8'), null);
  assert.equal(await b.decodeFrame(wire.subarray(0, 10), CONN, 'vp8'), null);
  assert.equal(await b.decodeFrame(new Uint8Array(0), CONN, 'opus'), null);
  assert.deepEqual((await b.handleMessage({ type: 'stats' })).stats[CONN], { decrypted: 1, failed: 3, missing: 0 });
});

test('debug marker and capture with plaintext: the marker goes after the prefix, inside the ciphertext', async () => {
  const { a, b } = await pair();
  const marker = 'HISOKA-MARKER';
  await a.handleMessage({ type: 'debug-marker', marker });
  await b.handleMessage({ type: 'debug-marker', marker });
  await a.handleMessage({ type: 'debug-capture', n: 2, plaintext: true });
  const wire = await a.encodeFrame(VP8_KEY, 'vp8');
  assert.ok(!Buffer.from(wire).includes(Buffer.from(marker)));
  assert.deepEqual(await b.decodeFrame(wire, CONN, 'vp8'), VP8_KEY);
  const [cap] = (await a.handleMessage({ type: 'debug-get-captured' })).frames;
  assert.deepEqual(cap.bytes, wire);
  assert.deepEqual(cap.plaintext, VP8_KEY);
  assert.equal(cap.codec, 'vp8');
  assert.equal(cap.clear, 10);
  // Null cipher: the frame goes out as it is, marker included.
  await a.handleMessage({ type: 'debug-null-cipher', on: true });
  await b.handleMessage({ type: 'debug-null-cipher', on: true });
  const nc = await a.encodeFrame(OPUS, 'opus');
  assert.deepEqual(nc, cat(OPUS, Buffer.from(marker)));
  assert.deepEqual(await b.decodeFrame(nc, CONN, 'opus'), OPUS);
});

test('transform stream: the codec comes from mimeType, else the payload type, else the kind', async () => {
  const { a, b } = await pair();
  const payloadTypes = { 96: 'vp8', 100: 'h264', 111: 'opus' };
  for (const x of [a, b]) await x.handleMessage({ type: 'set-streams', payloadTypes });
  const mk = (data, metadata) => ({ data: Uint8Array.from(data).buffer, getMetadata: () => metadata });
  const frames = [
    mk(VP8_KEY, { mimeType: 'video/VP8', payloadType: 96 }), // Chromium
    mk(VP8_DELTA, { payloadType: 96 }), // no mimeType: payload type
    mk(H264_DELTA, { payloadType: 100 }),
    mk(OPUS, {}), // audio transform without metadata: Opus by kind
  ];
  const kinds = ['video', 'video', 'video', 'audio'];
  const run = async (x, side, list) => {
    const out = [];
    for (let i = 0; i < list.length; i++) {
      await new ReadableStream({ start(c) { c.enqueue(list[i]); c.close(); } })
        .pipeThrough(x.transformFor({ side, kind: kinds[i], senderConnectionId: CONN }))
        .pipeTo(new WritableStream({ write(f) { out.push(f); } }));
    }
    return out;
  };
  const sent = await run(a, 'send', frames);
  assert.equal(sent.length, 4);
  const clear = [10, 3, 6, 1];
  const originals = [VP8_KEY, VP8_DELTA, H264_DELTA, OPUS];
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(new Uint8Array(sent[i].data).subarray(0, clear[i]), originals[i].subarray(0, clear[i]));
  }
  const got = await run(b, 'receive', sent.map((f, i) => mk(new Uint8Array(f.data), i === 0 ? { mimeType: 'video/VP8' } : { payloadType: [96, 96, 100, 111][i] })));
  assert.deepEqual(got.map((f) => new Uint8Array(f.data)), originals);
});
