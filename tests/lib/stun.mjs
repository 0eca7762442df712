// Builds ICE binding requests (RFC 5389 / RFC 8445) in Node, for tests that validate a
// tuple with the server without a browser.
import crypto from 'node:crypto';

const MAGIC = 0x2112a442;

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function attr(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const out = Buffer.alloc(4 + value.length + pad);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

// A STUN message of `type` with transaction id `tid`: the attributes, then
// MESSAGE-INTEGRITY keyed with password and FINGERPRINT (RFC 5389 §15.4, §15.5).
function signed(type, tid, attrs, password) {
  const header = (len) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(MAGIC, 4);
    tid.copy(h, 8);
    return h;
  };
  let body = Buffer.concat(attrs);
  // MESSAGE-INTEGRITY covers the message with the length as if it ended after it.
  const mac = crypto.createHmac('sha1', password)
    .update(Buffer.concat([header(body.length + 24), body])).digest();
  body = Buffer.concat([body, attr(0x0008, mac)]);
  const crc = (crc32(Buffer.concat([header(body.length + 8), body])) ^ 0x5354554e) >>> 0;
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE(crc, 0);
  body = Buffer.concat([body, attr(0x8028, fp)]);
  return Buffer.concat([header(body.length), body]);
}

// A binding request from the ICE-controlling side: USERNAME "server:client", PRIORITY,
// ICE-CONTROLLING, optional USE-CANDIDATE, MESSAGE-INTEGRITY with password, FINGERPRINT.
export function bindingRequest({ serverUfrag, clientUfrag = 'node', password, useCandidate = true }) {
  const attrs = [
    attr(0x0006, Buffer.from(`${serverUfrag}:${clientUfrag}`)),
    attr(0x0024, Buffer.from([0x6e, 0x00, 0x1e, 0xff])),
    attr(0x802a, crypto.randomBytes(8)),
  ];
  if (useCandidate) attrs.push(attr(0x0025, Buffer.alloc(0)));
  return signed(0x0001, crypto.randomBytes(12), attrs, password);
}

// The server's ICE credentials from its offer SDP.
export function iceCredentials(sdp) {
  return {
    serverUfrag: /a=ice-ufrag:(\S+)/.exec(sdp)[1],
    password: /a=ice-pwd:(\S+)/.exec(sdp)[1],
  };
}

// True when buf is a binding success response (class 0x0101).
export function isBindingSuccess(buf) {
  return buf.length >= 20 && buf.readUInt16BE(0) === 0x0101 && buf.readUInt32BE(4) === MAGIC;
}

// A binding success response to `request` (its transaction id), as a client answering the
// server's consent check writes it: XOR-MAPPED-ADDRESS (a placeholder), MESSAGE-INTEGRITY
// keyed with password, FINGERPRINT.
export function bindingSuccess(request, password) {
  const xorMapped = attr(0x0020, Buffer.from([0, 1, 0x21, 0x12, 0x5e, 0x12, 0xa4, 0x43]));
  return signed(0x0101, request.subarray(8, 20), [xorMapped], password);
}
