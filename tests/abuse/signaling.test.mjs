// docs/threats.md 8 (signaling JSON) and the signaling parts of 13 (limits, timeouts): each
// test sends one hostile input, checks how the server refuses it, then proves the
// server still serves well-behaved clients (tests/lib/abuse.mjs assertServes).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import {
  assertServes, expectClose, freshChannel, join, leave, open, rawSocket, sendFrame, sleep,
  withServer,
} from '../lib/abuse.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

// One server with the default limits (64 KiB before connect, 256 KiB after) and a short
// ping interval for the tests that need no special configuration.
describe('default limits', () => {
  let server;
  before(async () => { server = await startServer({ ping_interval: '1 s' }); });
  after(async () => { await server?.stop(); });

  // Sends text as the first message of a fresh WebSocket; expects a close.
  async function firstMessage(text, code, reason) {
    const client = await open(server.url);
    client.send(text);
    return expectClose(client, code, reason);
  }

  test('abuse 8: not JSON', async () => {
    for (const text of ['hello', '{"type":"connect",', '{"type": connect}', '', '\u0000']) {
      await firstMessage(text, 4400, /not valid JSON/);
    }
    await assertServes(server);
  });

  test('abuse 8: not JSON after connect', async () => {
    const a = await join(server.url, freshChannel());
    a.client.send('{"type":"pong"');
    await expectClose(a.client, 4400, /not valid JSON/);
    await assertServes(server);
  });

  test('abuse 8: invalid UTF-8 in a text frame', async () => {
    const { ws, closed } = await rawSocket(server.url);
    ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    const { code } = await closed;
    // lws may refuse it itself (1007) when it validates UTF-8; else jansson does (4400).
    assert.ok(code === 4400 || code === 1007, `close code ${code}`);
    await assertServes(server);
  });

  test('abuse 8: JSON but not an object', async () => {
    for (const text of ['[1,2,3]', '[]', '[{"type":"connect"}]']) {
      await firstMessage(text, 4400, /not a JSON object/);
    }
    // jansson refuses a scalar at the top level as not JSON at all.
    for (const text of ['"connect"', '42', 'null', 'true']) {
      await firstMessage(text, 4400, /not (valid JSON|a JSON object)/);
    }
    await assertServes(server);
  });

  test('abuse 8: wrong types (role number, channel_id object, e2ee string, type number)', async () => {
    const cases = [
      [{ type: 'connect', role: 1, channel_id: 'x' }, /MISSING-ROLE/],
      [{ type: 'connect', role: 'sendrecv', channel_id: { a: 1 } }, /MISSING-CHANNEL-ID/],
      [{ type: 'connect', role: 'sendrecv', channel_id: ['x'] }, /MISSING-CHANNEL-ID/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 7 }, /MISSING-CHANNEL-ID/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', e2ee: 'yes' }, /booleans/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', audio: 'yes' }, /audio/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', video: 3 }, /video/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', sdp: 12 }, /sdp/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', signaling_notify_metadata: [] },
        /signaling_notify_metadata/],
      [{ type: 'connect', role: 'sendrecv', channel_id: 'x', client_id: {} }, /INVALID-CLIENT-ID/],
      [{ type: 1, role: 'sendrecv', channel_id: 'x' }, /connect/],
    ];
    for (const [msg, reason] of cases) {
      await firstMessage(JSON.stringify(msg), 4400, reason);
    }
    await assertServes(server);
  });

  test('abuse 8: invalid role', async () => {
    for (const role of ['admin', '', 'SENDRECV', 'sendrecv ', 'recvonly\n']) {
      await firstMessage(JSON.stringify({ type: 'connect', role, channel_id: 'x' }), 4400,
        /INVALID-ROLE/);
    }
    // An embedded NUL ("recv\0only" would read as "recv" in C) is refused as well.
    await firstMessage(JSON.stringify({ type: 'connect', role: 'sendrecv\u0000x', channel_id: 'x' }),
      4400, /INVALID-ROLE|not valid JSON/);
    await assertServes(server);
  });

  test('abuse 8: missing channel_id and invalid channel_id', async () => {
    await firstMessage(JSON.stringify({ type: 'connect', role: 'sendrecv' }), 4400,
      /MISSING-CHANNEL-ID/);
    for (const channel of ['', ' ', 'a b', 'x'.repeat(256), 'caf\u00e9', 'tab\t']) {
      await firstMessage(JSON.stringify({ type: 'connect', role: 'sendrecv', channel_id: channel }),
        4400, /INVALID-CHANNEL-ID/);
    }
    await firstMessage(JSON.stringify({ type: 'connect', role: 'sendrecv', channel_id: 'a\u0000b' }),
      4400, /INVALID-CHANNEL-ID|not valid JSON/);
    // 255 characters is the longest valid channel_id.
    await assertServes(server, { channel: 'c'.repeat(255) });
    await assertServes(server);
  });

  test('abuse 8: 10,000-deep nesting', async () => {
    const depth = 10000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    await firstMessage(`{"type":"connect","role":"sendrecv","channel_id":"deep","metadata":${nested}}`,
      4400, /not valid JSON/);
    const objects = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    await firstMessage(objects, 4400, /not valid JSON/);
    // And after connect, in an otherwise valid message.
    const a = await join(server.url, freshChannel());
    a.client.send(`{"type":"candidate","candidate":null,"x":${nested}}`);
    await expectClose(a.client, 4400, /not valid JSON/);
    await assertServes(server);
  });

  // Sends one message of `size` bytes in one frame (before or after connect); returns
  // how the client saw the close and the server's log line for the connection.
  async function sendHuge(size, afterConnect) {
    let client;
    let text;
    if (afterConnect) {
      client = (await join(server.url, freshChannel())).client;
      text = `{"type":"candidate","candidate":"${'B'.repeat(size)}"}`;
    } else {
      client = await open(server.url);
      text = `{"type":"connect","role":"sendrecv","channel_id":"big","metadata":"${'A'.repeat(size)}"}`;
    }
    const started = Date.now();
    client.send(text);
    const closed = await client.waitClose(10000);
    return { closed, ms: Date.now() - started };
  }

  test('abuse 8: a 16 MiB string', async () => {
    const member = await join(server.url, freshChannel());
    const before = (server.log.match(/closing: 4413 MESSAGE-TOO-LARGE/g) || []).length;
    // The server refuses it (logged with 4413) and drops the connection promptly.
    const first = await sendHuge(16 << 20, false);
    assert.ok(first.ms < 5000, `closed after ${first.ms} ms`);
    const second = await sendHuge(16 << 20, true);
    assert.ok(second.ms < 5000, `closed after ${second.ms} ms`);
    await sleep(100);
    const logged = server.log.match(/closing: 4413 MESSAGE-TOO-LARGE: messages are limited to \d+ bytes/g);
    assert.equal(logged.length - before, 2);
    assert.match(server.log, /limited to 65536 bytes/);
    assert.match(server.log, /limited to 262144 bytes/);
    await assertServes(server);
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });

  test('abuse 8: a 16 MiB string: the sender reads close code 4413', async () => {
    // 1 MiB usually fits the socket buffers (then the close frame is read), 16 MiB never.
    for (const size of [1 << 20, 16 << 20]) {
      for (const afterConnect of [false, true]) {
        const { closed } = await sendHuge(size, afterConnect);
        assert.equal(closed.code, 4413, `${size} bytes, after connect: ${afterConnect}`);
        assert.match(closed.reason,
          afterConnect ? /MESSAGE-TOO-LARGE: messages are limited to 262144 bytes/
            : /MESSAGE-TOO-LARGE: messages are limited to 65536 bytes/);
      }
    }
    await assertServes(server);
  });

  test('abuse 8: a message without a string type', async () => {
    for (const msg of [{}, { type: null }, { type: 5 }, { type: ['answer'] }, { type: {} }]) {
      const b = await join(server.url, freshChannel());
      b.client.send(msg);
      await expectClose(b.client, 4400, /no string "type"/);
    }
    await assertServes(server);
  });

  test('abuse 8: answer as the first message (before offer)', async () => {
    await firstMessage(JSON.stringify({ type: 'answer', sdp: 'v=0\r\n' }), 4400,
      /first message must be type "connect"/);
    await firstMessage(JSON.stringify({ type: 'candidate', candidate: 'x' }), 4400,
      /first message must be type "connect"/);
    await assertServes(server);
  });

  test('abuse 8: a second answer', async () => {
    const a = await join(server.url, freshChannel());
    a.client.send({ type: 'answer', sdp: fakeAnswer(a.offer.sdp) });
    await expectClose(a.client, 4400, /answer was already received/);
    // A re-answer without a re-offer.
    const b = await join(server.url, freshChannel());
    b.client.send({ type: 're-answer', sdp: fakeAnswer(b.offer.sdp) });
    await expectClose(b.client, 4400, /re-answer without a re-offer/);
    await assertServes(server);
  });

  // Sends continuation frames of 32 KiB (never a final one) until the socket closes or
  // 2 MiB went out; returns the bytes sent and the close as the client saw it.
  async function fragmentForever(client) {
    const chunk = Buffer.alloc(32 * 1024, 0x20);
    let sent = 0;
    try {
      await sendFrame(client.ws, '{"type":"candidate","candidate":"', { fin: false });
      while (sent < 2 * 1024 * 1024 && client.closeCode === undefined) {
        await sendFrame(client.ws, chunk, { fin: false, binary: false });
        sent += chunk.length;
        await sleep(1);
      }
    } catch {
      // The server closed the socket while we were still writing.
    }
    const closed = await client.waitClose(10000);
    return { sent, closed };
  }

  test('abuse 8: a WebSocket message fragmented forever', async () => {
    const member = await join(server.url, freshChannel());
    const a = await join(server.url, member.created.channel_id);
    await member.client.nextNotify('connection.created');
    const { sent } = await fragmentForever(a.client);
    // Refused once over max_message_size (256 KiB), long before 2 MiB.
    assert.ok(sent < 1024 * 1024, `closed after ${sent} bytes`);
    await sleep(50);
    assert.match(server.log, new RegExp(`\\[${a.id}\\] closing: 4413 MESSAGE-TOO-LARGE: `
      + 'messages are limited to 262144 bytes'));
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, a.id);
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });

  test('abuse 8: a WebSocket message fragmented forever: the sender reads close code 4413', async () => {
    for (let i = 0; i < 5; i++) {
      const a = await join(server.url, freshChannel());
      const { closed } = await fragmentForever(a.client);
      assert.equal(closed.code, 4413, `attempt ${i + 1}`);
      assert.match(closed.reason, /MESSAGE-TOO-LARGE: messages are limited to 262144 bytes/);
    }
    await assertServes(server);
  });

  test('abuse 8: a fragmented message under the limit is reassembled', async () => {
    const a = await join(server.url, freshChannel());
    const text = JSON.stringify({ type: 'candidate', candidate: 'c'.repeat(3000) });
    for (let i = 0; i < text.length; i += 1000) {
      await sendFrame(a.client.ws, text.slice(i, i + 1000), { fin: i + 1000 >= text.length });
    }
    // Still a member: it answers the next ping and leaves with a normal close.
    await a.client.next('ping', () => true, 3000);
    a.client.send({ type: 'disconnect', reason: 'NO-ERROR' });
    await expectClose(a.client, 1000);
    await assertServes(server);
  });

  test('abuse 8: a flood of 2,000 candidate messages', async () => {
    const member = await join(server.url, freshChannel());
    const ch = member.created.channel_id;
    const flooder = await join(server.url, ch);
    await member.client.nextNotify('connection.created');
    const candidate = {
      type: 'candidate',
      candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0',
      sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'test',
    };
    const text = JSON.stringify(candidate);
    for (let i = 0; i < 2000; i++) flooder.client.ws.send(text);
    // Others are unaffected while the flood is processed.
    await assertServes(server);
    // The flooder's own session still works: a ping it can answer, notifies for a joiner.
    flooder.client.messages.length = 0;
    await flooder.client.next('ping', () => true, 3000);
    await assertServes(server, { channel: ch, others: [member, flooder] });
    assert.equal(flooder.client.closeCode, undefined);
    flooder.client.send({ type: 'disconnect', reason: 'NO-ERROR' });
    await expectClose(flooder.client, 1000);
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, flooder.id);
    await leave(member);
  });

  test('abuse 8: a WebSocket to a path other than /signaling is refused', async () => {
    const base = server.url.replace(/\/signaling$/, '');
    for (const path of ['/', '/other', '/signalingX', '/signaling/x', '/Signaling']) {
      const ws = new WebSocket(base + path);
      const outcome = await new Promise((resolve) => {
        const t = setTimeout(() => resolve('timeout'), 5000);
        ws.on('open', () => { clearTimeout(t); resolve('open'); });
        ws.on('unexpected-response', (_req, res) => { clearTimeout(t); resolve(`http ${res.statusCode}`); });
        ws.on('error', () => { clearTimeout(t); resolve('error'); });
      });
      assert.notEqual(outcome, 'open', `${path} must not open a WebSocket`);
      assert.notEqual(outcome, 'timeout', `${path} must be refused promptly`);
      ws.terminate();
    }
    await assertServes(server);
  });

  test('abuse 8: disconnect message closes with 1000', async () => {
    const member = await join(server.url, freshChannel());
    const a = await join(server.url, member.created.channel_id);
    await member.client.nextNotify('connection.created');
    a.client.send({ type: 'disconnect', reason: 'NO-ERROR' });
    await expectClose(a.client, 1000);
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, a.id);
    assert.equal(gone.channel_connections, 1);
    // Before the answer too.
    const b = await open(server.url, { role: 'sendonly', channel_id: freshChannel() });
    await b.next('offer');
    b.send({ type: 'disconnect' });
    await expectClose(b, 1000);
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });
});

describe('small message limits', () => {
  let server;
  before(async () => {
    server = await startServer({
      max_message_size_before_connect: '1 KiB',
      max_message_size: '4 KiB',
    });
  });
  after(async () => { await server?.stop(); });

  function connectOfSize(size, channel) {
    const base = { type: 'connect', role: 'sendrecv', channel_id: channel, metadata: '' };
    const pad = size - JSON.stringify(base).length;
    assert.ok(pad >= 0);
    const text = JSON.stringify({ ...base, metadata: 'm'.repeat(pad) });
    assert.equal(Buffer.byteLength(text), size);
    return text;
  }

  test('abuse 8: too-large message before connect (max_message_size_before_connect)', async () => {
    const over = await open(server.url);
    over.send(connectOfSize(1025, freshChannel()));
    const closed = await expectClose(over, 4413, /MESSAGE-TOO-LARGE/);
    assert.match(closed.reason, /1024/);
    // Exactly at the limit is accepted.
    const ch = freshChannel();
    const at = await open(server.url);
    at.send(connectOfSize(1024, ch));
    const offer = await at.next('offer');
    at.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
    await at.nextNotify('connection.created');
    await assertServes(server, { channel: ch, others: [{ client: at }] });
    await leave(at);
  });

  test('abuse 8: too-large message after connect (max_message_size)', async () => {
    const member = await join(server.url, freshChannel());
    const a = await join(server.url, member.created.channel_id);
    await member.client.nextNotify('connection.created');
    // A 2 KiB message is fine after connect (over the before-connect limit).
    a.client.send({ type: 'candidate', candidate: 'c'.repeat(2048) });
    a.client.send({ type: 'candidate', candidate: 'c'.repeat(5000) });
    const closed = await expectClose(a.client, 4413, /MESSAGE-TOO-LARGE/);
    assert.match(closed.reason, /4096/);
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, a.id);
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });
});

test('abuse 13: connect_timeout closes an idle WebSocket with 4408', async () => {
  await withServer({ connect_timeout: '1 s' }, async (server) => {
    const started = Date.now();
    const idle = await open(server.url);
    const member = await join(server.url, freshChannel());
    await expectClose(idle, 4408, /CONNECT-TIMEOUT/, 4000);
    assert.ok(Date.now() - started >= 900, 'not before the timeout');
    // A raw socket that sends nothing at all, too.
    const { closed } = await rawSocket(server.url);
    const c = await closed;
    assert.equal(c.code, 4408);
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });
});

test('abuse 13: missed pongs close with 4408 and the channel is told', async () => {
  await withServer({ ping_interval: '1 s', max_missed_pongs: 2 }, async (server) => {
    const ch = freshChannel();
    const member = await join(server.url, ch);
    const mute = await join(server.url, ch, {}, { autoPong: false });
    await member.client.nextNotify('connection.created');
    const started = Date.now();
    await expectClose(mute.client, 4408, /PING-TIMEOUT/, 6000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5500, `closed after ${elapsed} ms`);
    assert.ok(mute.client.messages.some((m) => m.type === 'ping'), 'it was pinged');
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, mute.id);
    assert.equal(gone.channel_connections, 1);
    // The member that answers its pings is still there.
    assert.equal(member.client.closeCode, undefined);
    await assertServes(server, { channel: ch, others: [member] });
    await leave(member);
  });
});

test('abuse 13: channel full (max_connections_per_channel = 2)', async () => {
  await withServer({ max_connections_per_channel: 2 }, async (server) => {
    const ch = freshChannel();
    const a = await join(server.url, ch);
    const b = await join(server.url, ch);
    await a.client.nextNotify('connection.created');
    const c = await open(server.url, { role: 'sendrecv', channel_id: ch });
    await expectClose(c, 4429, /CHANNEL-FULL/);
    // A recvonly or an unanswered member counts as well.
    const d = await open(server.url, { role: 'recvonly', channel_id: ch });
    await expectClose(d, 4429, /CHANNEL-FULL/);
    await assertServes(server);
    // Once one leaves, there is room again.
    await leave(b);
    await a.client.nextNotify('connection.destroyed');
    await assertServes(server, { channel: ch, others: [a] });
    await leave(a);
  });
});

test('abuse 13: server full (max_connections = 2)', async () => {
  await withServer({ max_connections: 2 }, async (server) => {
    const a = await join(server.url, freshChannel());
    const b = await join(server.url, freshChannel());
    const c = await open(server.url, { role: 'sendrecv', channel_id: freshChannel() });
    await expectClose(c, 4429, /SERVER-FULL/);
    const d = await open(server.url, { role: 'sendrecv', channel_id: a.created.channel_id });
    await expectClose(d, 4429, /SERVER-FULL/);
    await leave(b);
    await assertServes(server);
    await assertServes(server, { channel: a.created.channel_id, others: [a] });
    await leave(a);
  });
});

test('abuse 8: e2ee:true on a server with e2ee = false (4403 E2EE-DISABLED)', async () => {
  await withServer({ e2ee: false }, async (server) => {
    const ch = freshChannel();
    const member = await join(server.url, ch);
    const c = await open(server.url, { role: 'sendrecv', channel_id: ch, e2ee: true });
    await expectClose(c, 4403, /E2EE-DISABLED/);
    const d = await open(server.url, { role: 'sendrecv', channel_id: freshChannel(), e2ee: true });
    await expectClose(d, 4403, /E2EE-DISABLED/);
    await assertServes(server, { channel: ch, others: [member] });
    await leave(member);
  });
});

test('abuse 8: plain and e2ee clients are never mixed in one channel (4403 E2EE-MISMATCH)', async () => {
  await withServer({ e2ee: true }, async (server) => {
    const secret = freshChannel('e2ee');
    const plain = freshChannel('plain');
    const e = await join(server.url, secret, { e2ee: true });
    const p = await join(server.url, plain);
    const c = await open(server.url, { role: 'sendrecv', channel_id: secret });
    await expectClose(c, 4403, /E2EE-MISMATCH/);
    const c2 = await open(server.url, { role: 'sendrecv', channel_id: secret, e2ee: false });
    await expectClose(c2, 4403, /E2EE-MISMATCH/);
    const d = await open(server.url, { role: 'sendrecv', channel_id: plain, e2ee: true });
    await expectClose(d, 4403, /E2EE-MISMATCH/);
    // Both channels still take members of their own kind.
    await assertServes(server, { channel: plain, others: [p] });
    const e2 = await join(server.url, secret, { e2ee: true });
    const n = await e.client.nextNotify('connection.created');
    assert.equal(n.connection_id, e2.id);
    await leave(e2);
    await leave(e);
    await leave(p);
    // Once empty, a channel's mode is forgotten.
    await assertServes(server, { channel: secret });
  });
});

// These two run on their own server: hisoka's use-after-free on them aborts an ASan build.
test('abuse 8: a message type that does not exist', async () => {
  await withServer({}, async (server) => {
    const member = await join(server.url, freshChannel());
    const a = await join(server.url, member.created.channel_id);
    await member.client.nextNotify('connection.created');
    a.client.send({ type: 'bogus' });
    await expectClose(a.client, 4400, /unknown message type/);
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, a.id);
    // Server-to-client types are not accepted from a client either.
    for (const type of ['offer', 're-offer', 'notify', 'ping', 'push', 'redirect', 'ANSWER']) {
      const b = await join(server.url, freshChannel());
      b.client.send({ type, sdp: 'v=0' });
      await expectClose(b.client, 4400, /unknown message type/);
    }
    await assertServes(server, { channel: member.created.channel_id, others: [member] });
    await leave(member);
  });
});

test('abuse 8: a second connect', async () => {
  await withServer({}, async (server) => {
    const member = await join(server.url, freshChannel());
    const ch = member.created.channel_id;
    // Before answering.
    const a = await open(server.url, { role: 'sendrecv', channel_id: ch });
    await a.next('offer');
    a.send({ type: 'connect', role: 'sendrecv', channel_id: ch });
    await expectClose(a, 4400, /connect was already received/);
    // After answering, into another channel.
    const b = await join(server.url, ch);
    await member.client.nextNotify('connection.created');
    b.client.send({ type: 'connect', role: 'recvonly', channel_id: freshChannel() });
    await expectClose(b.client, 4400, /connect was already received/);
    const gone = await member.client.nextNotify('connection.destroyed');
    assert.equal(gone.connection_id, b.id);
    assert.equal(gone.channel_connections, 1);
    await assertServes(server, { channel: ch, others: [member] });
    await leave(member);
  });
});
