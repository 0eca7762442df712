// Media-plane behaviour that needs no browser: datagrams from tuples ICE has not
// validated are dropped and counted, a peer that never completes ICE is removed and
// the channel told, and an idle server uses next to no CPU.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';

async function stats(server) {
  return (await fetch(`${server.apiUrl}/stats`)).json();
}

async function join(server, channel) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, id: offer.connection_id };
}

test('DTLS, RTP and RTCP from a tuple ICE has not validated are dropped and counted', async () => {
  const server = await startServer();
  try {
    const member = await join(server, 'u');
    const sock = dgram.createSocket('udp4');
    const send = (buf) => new Promise((r) => sock.send(buf, server.config.media_port, '127.0.0.1', r));
    const before = (await stats(server)).media.dropped_unvalidated;
    // A DTLS ClientHello record header, an RTP header, an RTCP RR: none from a checked tuple.
    await send(Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0]));
    await send(Buffer.concat([Buffer.from([0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2]), Buffer.alloc(100)]));
    await send(Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 5]));
    sock.close();
    await new Promise((r) => setTimeout(r, 200));
    const after = (await stats(server)).media;
    assert.equal(after.dropped_unvalidated - before, 3);
    assert.equal(after.dtls_connected, 0);
    // The server still serves: a new member joins and the first one is told.
    const other = await join(server, 'u');
    const created = await member.client.nextNotify('connection.created');
    assert.equal(created.connection_id, other.id);
    member.client.close();
    other.client.close();
  } finally {
    await server.stop();
  }
});

test('a peer that never completes ICE is removed and the channel notified', async () => {
  const server = await startServer({ consent_timeout: '2 s', ping_interval: '1 s' });
  try {
    const silent = await join(server, 'ice');
    await new Promise((r) => setTimeout(r, 1000));
    const observer = await join(server, 'ice');
    const closed = await silent.client.waitClose(4000);
    assert.equal(closed.code, 4408);
    assert.match(closed.reason, /^ICE-TIMEOUT/);
    const destroyed = await observer.client.nextNotify('connection.destroyed', 3000);
    assert.equal(destroyed.connection_id, silent.id);
    assert.equal(destroyed.channel_connections, 1);
    assert.ok((await stats(server)).media.consent_expired >= 1);
    observer.client.close();
  } finally {
    await server.stop();
  }
});

function cpuTicks(pid) {
  // /proc/PID/stat fields 14 and 15: utime and stime in clock ticks (after the comm).
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

test('an idle server uses next to no CPU', async () => {
  const server = await startServer({ log_level: 'warn' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const t0 = cpuTicks(server.pid);
    await new Promise((r) => setTimeout(r, 5000));
    const used = cpuTicks(server.pid) - t0;
    console.log(`# idle CPU: ${used} clock ticks (1/100 s) in 5 s`);
    // 5 ticks in 5 s would be 1% of a core; idle should be (close to) zero.
    assert.ok(used <= 5, `idle server used ${used} ticks in 5 s`);
  } finally {
    await server.stop();
  }
});
