// Helpers for the black-box abuse tests (tests/abuse): a well-behaved member that joins
// and proves the server still serves, raw WebSockets for hostile input, E2EE key
// message builders and /stats.
import assert from 'node:assert/strict';
import WebSocket from 'ws';

import { SoraClient } from './client.mjs';
import { fakeAnswer } from './sdp.mjs';
import { startServer } from './server.mjs';

export const ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let channelSerial = 0;
// A channel name no other test uses.
export function freshChannel(prefix = 'probe') {
  channelSerial += 1;
  return `${prefix}-${process.pid}-${channelSerial}`;
}

// Opens a Sora client (autoPong as given) and sends connect.
export async function open(url, connect, { autoPong = true } = {}) {
  const client = new SoraClient(url);
  client.autoPong = autoPong;
  await client.opened;
  if (connect) client.send({ type: 'connect', ...connect });
  return client;
}

// A well-behaved member: connect, offer, fakeAnswer, its own connection.created.
export async function join(url, channel, extra = {}, opts = {}) {
  const client = await open(url, { role: 'sendrecv', channel_id: channel, ...extra }, opts);
  const offer = await client.next('offer');
  assert.match(offer.connection_id, ID);
  assert.equal(offer.channel_id, channel);
  client.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  const created = await client.nextNotify('connection.created');
  assert.equal(created.connection_id, offer.connection_id);
  return { client, id: offer.connection_id, offer, created };
}

// Closes a member normally and waits for the close.
export async function leave(member) {
  const client = member.client ?? member;
  client.close();
  await client.waitClose();
}

// Proves the server still serves: a new member in a fresh channel (or in `channel`,
// where `others` already are) connects, gets its offer, answers and is announced;
// every member of `others` is told about it. The new member leaves again. `extra` is
// added to its connect message (e.g. { e2ee: true }).
export async function assertServes(server, { channel, others = [], extra = {} } = {}) {
  assert.ok(server.alive(), 'hisoka is still running');
  const ch = channel ?? freshChannel();
  const probe = await join(server.url, ch, extra);
  assert.equal(probe.created.channel_connections, others.length + 1);
  for (const o of others) {
    const n = await o.client.nextNotify('connection.created');
    assert.equal(n.connection_id, probe.id);
  }
  await leave(probe);
  for (const o of others) {
    const n = await o.client.nextNotify('connection.destroyed');
    assert.equal(n.connection_id, probe.id);
  }
}

// Waits for a client's close and checks code and (a pattern in) the reason.
export async function expectClose(client, code, reason, timeout = 5000) {
  const closed = await client.waitClose(timeout);
  assert.equal(closed.code, code, `close code (reason "${closed.reason}")`);
  if (reason) assert.match(closed.reason, reason);
  return closed;
}

// A raw ws WebSocket, opened.
export async function rawSocket(url, options = {}) {
  const ws = new WebSocket(url, options);
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, closed };
}

// Sends one ws frame and resolves when it is written (or rejects when the socket is gone).
export function sendFrame(ws, data, options) {
  return new Promise((resolve, reject) => {
    ws.send(data, options, (err) => (err ? reject(err) : resolve()));
  });
}

// Runs fn with a server started with overrides; stops it (asserting a clean exit).
export async function withServer(overrides, fn) {
  const server = await startServer(overrides);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

export async function stats(server) {
  let res;
  try {
    res = await fetch(`${server.apiUrl}/stats`);
  } catch (e) {
    // Say why: hisoka gone (and how: its log ends with the reason) or not answering.
    throw new Error(`GET /stats failed (${e.cause?.code ?? e.message}); hisoka running: `
      + `${server.alive()}; log tail:\n${server.log.split('\n').slice(-8).join('\n')}`);
  }
  assert.equal(res.status, 200);
  return res.json();
}

// Asserts that no binary message reaches any of clients within ms.
export async function expectNoBinary(clients, ms = 300) {
  await sleep(ms);
  for (const c of clients) {
    const client = c.client ?? c;
    assert.equal(client.binary.length, 0, 'no key message arrived');
  }
}

/* E2EE key messages (server/proto/keyrelay.h), big-endian:
 *   Type:8 Reserved:8 CiphertextLength:16 | Src id (26 ASCII) | Dst id (26 ASCII) | body
 * Type 0 PreKey: body IdentityKey(32) EphemeralKey(32), length 0, 120 bytes in all.
 * Type 1 Cipher: body RatchetPub(32) PN(4) N(4) ciphertext(CiphertextLength).
 * Type 2 Wrapped: body ciphertext(CiphertextLength), 1..1024 bytes. */
export function keyMessage({ type, reserved = 0, ctLen = 0, src, dst, body = Buffer.alloc(0) }) {
  const header = Buffer.alloc(4);
  header[0] = type;
  header[1] = reserved;
  header.writeUInt16BE(ctLen, 2);
  const s = Buffer.from(src, 'ascii');
  const d = Buffer.from(dst, 'ascii');
  assert.equal(s.length, 26);
  assert.equal(d.length, 26);
  return Buffer.concat([header, s, d, Buffer.from(body)]);
}

// Deterministic body bytes: distinguishable per seed.
export function pattern(len, seed = 0) {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 31 + i * 7 + 3) & 0xff;
  return b;
}

export function prekey(src, dst, seed = 0) {
  return keyMessage({ type: 0, src, dst, body: pattern(64, seed) });
}

export function cipher(src, dst, ctLen = 16, seed = 0) {
  return keyMessage({ type: 1, ctLen, src, dst, body: pattern(40 + ctLen, seed) });
}

export function wrapped(src, dst, ctLen = 48, seed = 0) {
  return keyMessage({ type: 2, ctLen, src, dst, body: pattern(ctLen, seed) });
}
