// Descriptor exhaustion (docs/threats.md 18): 1,100 idle WebSockets from one address
// against a server whose open file limit is 1024. max_connections_per_address keeps that
// address to its share, the server neither spins nor floods its log, reports its file
// limit at start-up, and a client from another address still gets its offer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';

import { SoraClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { apiRequest, startServer } from '../lib/server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// CPU seconds (user + system) the process has used.
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

// 5 s more of the attack (20 new sockets a second): hisoka's share of a core meanwhile.
async function keepAttacking(server, sockets) {
  const cpu0 = cpuSeconds(server.pid);
  const t0 = Date.now();
  for (let i = 0; i < 5; i++) {
    await Promise.all(Array.from({ length: 20 }, () => openIdle(server.url).then((b) => sockets.push(b.ws))));
    await sleep(1000);
  }
  return (cpuSeconds(server.pid) - cpu0) / ((Date.now() - t0) / 1000);
}

function openIdle(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('open', () => resolve({ ws, ok: true }));
    ws.on('error', () => resolve({ ws, ok: false }));
    ws.on('unexpected-response', () => resolve({ ws, ok: false }));
  });
}

test('abuse 18: 1,100 idle WebSockets from one address under a 1024-descriptor limit', async () => {
  // hard and soft limit 1024 for hisoka only
  const wrap = ['sh', '-c', 'ulimit -Sn 1024 && ulimit -Hn 1024 && exec "$@"', 'sh'];
  const server = await startServer({ log_level: 'info', connect_timeout: '60 s' }, { wrap });
  const sockets = [];
  try {
    assert.match(server.log, /open file limit 1024 \(was 1024, hard limit 1024\)/);
    assert.match(server.log, /below max_connections \(1000\) \+ 64/, 'the shortfall is reported');
    let opened = 0;
    for (let i = 0; i < 1100; i += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => openIdle(server.url)));
      sockets.push(...batch.map((b) => b.ws));
      opened += batch.filter((b) => b.ok).length;
    }
    console.log(`# one address: ${opened} of 1100 WebSockets opened`);
    assert.equal(opened, 100, 'max_connections_per_address (100) of them');

    // Held for 5 s: the server sleeps, and logs the refusals at most once a second.
    const share = await keepAttacking(server, sockets);
    const warnings = server.log.split('\n').filter((l) => l.includes('max_connections_per_address')).length;
    console.log(`# under attack: hisoka used ${(share * 100).toFixed(1)}% of a core; ${warnings} log lines`);
    assert.ok(share < 0.05, `CPU ${(share * 100).toFixed(1)}%`);
    assert.ok(warnings <= 12, `${warnings} refusal log lines`);

    // Another address (127.0.0.2) is served at once.
    const c = new SoraClient(server.url, { localAddress: '127.0.0.2' });
    await c.opened;
    c.send({ type: 'connect', role: 'sendrecv', channel_id: 'fd' });
    const offer = await c.next('offer');
    c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
    await c.nextNotify('connection.created');
    const metrics = (await apiRequest(server, '/metrics')).text;
    const refused = Number(/hisoka_refusals_total\{reason="per_address"\} (\d+)/.exec(metrics)[1]);
    assert.ok(refused >= 1000, `${refused} refusals counted`);
    c.close();
    // The address gets its share back as its sockets close.
    for (const ws of sockets) ws.terminate();
    await sleep(500);
    const again = await openIdle(server.url);
    assert.ok(again.ok, 'room again after the sockets closed');
    again.ws.terminate();
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
});

test('abuse 18: out of descriptors (EMFILE), hisoka neither spins nor floods its log', async () => {
  // 128 descriptors, and no per-address cap in the way: the limit itself is hit.
  const wrap = ['sh', '-c', 'ulimit -Sn 128 && ulimit -Hn 128 && exec "$@"', 'sh'];
  const server = await startServer({ log_level: 'info', connect_timeout: '60 s',
    max_connections_per_address: 1000 }, { wrap });
  const sockets = [];
  try {
    let opened = 0;
    for (let i = 0; i < 200; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => openIdle(server.url)));
      sockets.push(...batch.map((b) => b.ws));
      opened += batch.filter((b) => b.ok).length;
    }
    const share = await keepAttacking(server, sockets);
    const lines = server.log.split('\n');
    const relief = lines.filter((l) => l.includes('out of file descriptors')).length;
    const lwsAccept = lines.filter((l) => l.includes('accept: errno')).length;
    console.log(`# EMFILE: ${opened} of 200 opened; hisoka used ${(share * 100).toFixed(1)}% of a ` +
      `core over 5 s; ${relief} log lines, ${lwsAccept} raw accept errors`);
    assert.ok(opened < 200, 'the descriptor limit was reached');
    assert.ok(share < 0.05, `CPU ${(share * 100).toFixed(1)}%`);
    assert.ok(relief >= 1 && relief <= 12, `${relief} log lines`);
    assert.equal(lwsAccept, 0);
    // Once the sockets close, clients are served again.
    for (const ws of sockets) ws.terminate();
    await sleep(1000);
    const c = new SoraClient(server.url);
    await c.opened;
    c.send({ type: 'connect', role: 'sendrecv', channel_id: 'fd2' });
    assert.ok((await c.next('offer')).connection_id);
    const metrics = (await apiRequest(server, '/metrics')).text;
    assert.ok(Number(/hisoka_refusals_total\{reason="no_descriptors"\} (\d+)/.exec(metrics)[1]) >= 1);
    c.close();
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
});
