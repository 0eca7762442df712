// Hostile input on the media port (docs/threats.md 1, 10, 11, 13) and peers that vanish, sent
// from Node: each test sends its input, then proves the server still serves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';
import { bindingRequest, iceCredentials, isBindingSuccess } from '../lib/stun.mjs';

async function media(server) {
  return (await (await fetch(`${server.apiUrl}/stats`)).json()).media;
}

async function join(server, channel) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, offer, id: offer.connection_id };
}

function udpSocket() {
  const sock = dgram.createSocket('udp4');
  const received = [];
  sock.on('message', (m) => received.push(m));
  return new Promise((resolve) => sock.bind(0, '127.0.0.1', () => resolve({ sock, received })));
}

function send(sock, port, buf) {
  return new Promise((r) => sock.send(buf, port, '127.0.0.1', r));
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// The server answers a correct binding request: ICE works for a well-behaved peer.
async function checkIce(server, offer) {
  const { sock, received } = await udpSocket();
  await send(sock, server.config.media_port, bindingRequest(iceCredentials(offer.sdp)));
  for (let i = 0; i < 40 && !received.some(isBindingSuccess); i++) await pause(25);
  sock.close();
  return received.some(isBindingSuccess);
}

test('abuse 1: truncated datagrams on the media port (0 bytes, short STUN/DTLS/RTP/RTCP)', async () => {
  const server = await startServer();
  try {
    const m0 = await media(server);
    const { sock } = await udpSocket();
    const port = server.config.media_port;
    for (const buf of [Buffer.alloc(0), Buffer.from([0, 1, 0, 0]), Buffer.from([22, 0xfe, 0xfd]),
      Buffer.from([0x80, 0x60, 0, 1]), Buffer.from([0x80, 200, 0, 6]), Buffer.alloc(1600, 0x80)]) {
      await send(sock, port, buf);
    }
    sock.close();
    await pause(200);
    const m1 = await media(server);
    const dropped = (m) => Object.values(m.dropped_demux).reduce((a, b) => a + b, 0);
    assert.ok(dropped(m1) - dropped(m0) >= 5, 'truncated and oversized datagrams counted');
    const a = await join(server, 'ok');
    assert.ok(await checkIce(server, a.offer), 'ICE still answered');
    a.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 11: STUN with a wrong ufrag, a wrong password, or a broken FINGERPRINT gets no answer', async () => {
  const server = await startServer();
  try {
    const a = await join(server, 's');
    const creds = iceCredentials(a.offer.sdp);
    const { sock, received } = await udpSocket();
    const port = server.config.media_port;
    await send(sock, port, bindingRequest({ ...creds, serverUfrag: 'nobody' }));
    await send(sock, port, bindingRequest({ ...creds, password: 'wrong-password-wrong-password' }));
    const broken = bindingRequest(creds);
    broken[broken.length - 1] ^= 0xff; // FINGERPRINT
    await send(sock, port, broken);
    await pause(300);
    assert.equal(received.length, 0, 'no reply to any of them');
    const m = await media(server);
    assert.ok(m.stun.unknown_ufrag >= 1);
    assert.ok(m.stun.bad_integrity >= 1);
    assert.ok(m.stun.bad_fingerprint >= 1);
    sock.close();
    assert.ok(await checkIce(server, a.offer), 'the right credentials still work');
    a.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 11: a STUN flood from many source ports', async () => {
  const server = await startServer();
  try {
    const a = await join(server, 'flood');
    const creds = iceCredentials(a.offer.sdp);
    const sockets = await Promise.all(Array.from({ length: 100 }, () => udpSocket()));
    const bad = bindingRequest({ ...creds, password: 'not-the-password-at-all' });
    for (let round = 0; round < 10; round++) {
      await Promise.all(sockets.map(({ sock }) => send(sock, server.config.media_port, bad)));
    }
    await pause(300);
    for (const { sock } of sockets) sock.close();
    const m = await media(server);
    assert.ok(m.stun.bad_integrity >= 900, `counted ${m.stun.bad_integrity} of 1000`);
    assert.ok(await checkIce(server, a.offer), 'a real check is still answered');
    const b = await join(server, 'flood');
    assert.equal((await a.client.nextNotify('connection.created')).connection_id, b.id);
    a.client.close();
    b.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 10: SRTP before keys, and a flood of unknown SSRCs, from a validated tuple', async () => {
  const server = await startServer();
  try {
    const a = await join(server, 'srtp');
    const { sock, received } = await udpSocket();
    const port = server.config.media_port;
    await send(sock, port, bindingRequest(iceCredentials(a.offer.sdp)));
    for (let i = 0; i < 40 && !received.some(isBindingSuccess); i++) await pause(25);
    assert.ok(received.some(isBindingSuccess));
    const m0 = await media(server);
    for (let i = 0; i < 500; i++) {
      const rtp = Buffer.alloc(200);
      rtp[0] = 0x80; rtp[1] = 0x60; rtp.writeUInt16BE(i, 2); rtp.writeUInt32BE(0x1000 + i, 8);
      await send(sock, port, rtp);
    }
    await send(sock, port, Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 9]));
    await pause(300);
    sock.close();
    const m1 = await media(server);
    assert.equal(m1.before_keys - m0.before_keys, 501, 'every packet before keys was dropped and counted');
    assert.equal(m1.forwarded_packets, m0.forwarded_packets, 'nothing was forwarded');
    const b = await join(server, 'srtp');
    assert.ok(await checkIce(server, b.offer));
    a.client.close();
    b.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 13: a peer killed with SIGKILL is removed and connection.destroyed sent in time', async () => {
  const server = await startServer({ consent_timeout: '2 s' });
  try {
    const observer = await join(server, 'kill');
    // The victim is a separate process that joins and then is killed without a word.
    const script = `
      const { connectClient } = await import(${JSON.stringify(new URL('../lib/client.mjs', import.meta.url).href)});
      const { fakeAnswer } = await import(${JSON.stringify(new URL('../lib/sdp.mjs', import.meta.url).href)});
      const c = await connectClient(${JSON.stringify(server.url)}, { role: 'sendrecv', channel_id: 'kill' });
      const offer = await c.next('offer');
      c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
      await c.nextNotify('connection.created');
      console.log(offer.connection_id);
      setInterval(() => {}, 1000);`;
    const victim = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const victimId = await new Promise((resolve) => victim.stdout.once('data', (d) => resolve(String(d).trim())));
    assert.equal((await observer.client.nextNotify('connection.created')).connection_id, victimId);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    const destroyed = await observer.client.nextNotify('connection.destroyed', 2000 + 5000);
    assert.equal(destroyed.connection_id, victimId);
    assert.ok(Date.now() - killedAt <= 7000);
    observer.client.close();
  } finally {
    await server.stop();
  }
});
