// Operations: /metrics in Prometheus text format with exact counter movements over a
// signaling session, the stats and disconnect API, graceful shutdown on SIGTERM, and
// the log file reopened on SIGHUP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { SoraClient, connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { delta, scrape } from '../lib/metrics.mjs';
import { startServer } from '../lib/server.mjs';

async function waitUntil(fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A client that counts every message it receives (text and binary).
async function member(server, channel, extra = {}) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel, ...extra });
  c.received = 0;
  c.ws.on('message', () => { c.received++; });
  const offer = await c.next('offer');
  c.offer = offer;
  c.id = offer.connection_id;
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return c;
}

// Key message type 0 (PreKey): header, source and destination ids, two 32-byte keys.
function preKey(src, dst) {
  const buf = Buffer.alloc(120);
  buf[0] = 0;
  buf.write(src, 4, 'ascii');
  buf.write(dst, 30, 'ascii');
  for (let i = 56; i < 120; i++) buf[i] = i;
  return buf;
}

const METRICS_REQUIRED = [
  'hisoka_connections', 'hisoka_channels', 'hisoka_packets_received_total',
  'hisoka_bytes_received_total', 'hisoka_packets_sent_total', 'hisoka_forwarded_packets_total',
  'hisoka_srtp_errors_total', 'hisoka_dtls_errors_total', 'hisoka_stun_requests_total',
  'hisoka_dropped_datagrams_total', 'hisoka_key_messages_total', 'hisoka_nacks_received_total',
  'hisoka_nacks_sent_total', 'hisoka_plis_total', 'hisoka_retransmissions_total',
  'hisoka_refusals_total', 'hisoka_signaling_messages_total', 'hisoka_notifies_total',
  'hisoka_offers_total', 'hisoka_reoffers_total', 'hisoka_connections_total',
  'hisoka_receive_wait_seconds', 'hisoka_forward_residence_seconds',
];

test('/metrics is strict Prometheus text and counters move exactly over a session', async () => {
  const server = await startServer({ e2ee: true, ping_interval: '1 min' });
  try {
    const before = await scrape(server);
    for (const name of METRICS_REQUIRED) assert.ok(name in before.families, `has ${name}`);
    for (const [name, f] of Object.entries(before.families)) assert.match(name, /^hisoka_/, `${name} prefix`);
    assert.equal(before.families.hisoka_connections.type, 'gauge');
    assert.equal(before.families.hisoka_channels.type, 'gauge');
    for (const r of ['unvalidated_tuple', 'unknown_ssrc', 'before_keys', 'too_short', 'too_long', 'unknown_first_byte']) {
      assert.ok(before.samples.has(`hisoka_dropped_datagrams_total{reason="${r}"}`), `drop reason ${r}`);
    }
    for (const r of ['ok', 'malformed', 'bad_integrity', 'unknown_ufrag', 'role_conflict']) {
      assert.ok(before.samples.has(`hisoka_stun_requests_total{result="${r}"}`), `STUN result ${r}`);
    }

    const a = await member(server, 'metrics', { e2ee: true });
    const b = await member(server, 'metrics', { e2ee: true });
    const mid = await scrape(server);
    assert.equal(mid.samples.get('hisoka_connections'), 2);
    assert.equal(mid.samples.get('hisoka_channels'), 1);

    a.sendBinary(preKey(a.id, b.id));
    const got = await b.nextBinary();
    assert.equal(got.length, 120);

    a.send({ type: 'disconnect' });
    assert.deepEqual(await a.waitClose(), { code: 1000, reason: 'NO-ERROR' });
    await b.nextNotify('connection.destroyed');
    await b.next('re-offer'); // A's tracks leave B's offer
    b.send({ type: 'disconnect' });
    assert.equal((await b.waitClose()).code, 1000);

    const after = await waitUntil(async () => {
      const s = await scrape(server);
      return s.samples.get('hisoka_connections') === 0 && s.samples.get('hisoka_websockets') === 0 ? s : null;
    });
    const d = delta(before, after);
    assert.equal(after.samples.get('hisoka_channels'), 0);
    assert.equal(d.hisoka_connections_total, 2);
    assert.equal(d.hisoka_offers_total, 2);
    // A: connect, answer, key message, disconnect; B: connect, answer, disconnect.
    assert.equal(d['hisoka_signaling_messages_total{direction="in"}'], 7);
    // Everything the server queued reached the two clients before their close frames.
    assert.equal(d['hisoka_signaling_messages_total{direction="out"}'], a.received + b.received);
    assert.equal(d['hisoka_key_messages_total{result="relayed"}'], 1);
    assert.equal(d['hisoka_key_messages_total{result="dropped"}'], 0);
    // created(A) to A, created(B) to A and B, destroyed(A) to B.
    assert.equal(d.hisoka_notifies_total, 4);
    // B's tracks to A, A's departure to B.
    assert.equal(d.hisoka_reoffers_total, 2);
    for (const k of Object.keys(d).filter((x) => x.startsWith('hisoka_refusals_total'))) {
      assert.equal(d[k], 0, k);
    }

    // A dropped key message (unknown destination) moves the dropped counter only.
    const c = await member(server, 'metrics2', { e2ee: true });
    const s1 = await scrape(server);
    c.sendBinary(preKey(c.id, '0'.repeat(26)));
    const s2 = await waitUntil(async () => {
      const s = await scrape(server);
      return s.samples.get('hisoka_key_messages_total{result="dropped"}') > s1.samples.get('hisoka_key_messages_total{result="dropped"}') ? s : null;
    });
    const d2 = delta(s1, s2);
    assert.equal(d2['hisoka_key_messages_total{result="dropped"}'], 1);
    assert.equal(d2['hisoka_key_messages_total{result="relayed"}'], 0);
    // A refused connect (e2ee mismatch in the same channel) counts one refusal.
    const x = await connectClient(server.url, { role: 'sendrecv', channel_id: 'metrics2' });
    assert.equal((await x.waitClose()).code, 4403);
    const s3 = await scrape(server);
    assert.equal(delta(s2, s3)['hisoka_refusals_total{reason="e2ee_mismatch"}'], 1);
    c.close();
  } finally {
    await server.stop();
  }
});

test('stats API lists connections and the disconnect API closes one', async () => {
  const server = await startServer({ ping_interval: '1 min' });
  try {
    const a = await member(server, 'api');
    const b = await member(server, 'api');
    const list = await (await fetch(`${server.apiUrl}/stats/connections`)).json();
    assert.deepEqual(list.map((x) => x.connection_id).sort(), [a.id, b.id].sort());
    for (const x of list) {
      assert.equal(x.channel_id, 'api');
      assert.equal(x.role, 'sendrecv');
      assert.equal(x.state, 'active');
    }
    const one = await (await fetch(`${server.apiUrl}/stats/connections/${a.id}`)).json();
    assert.equal(one.connection_id, a.id);
    assert.equal(one.channel_id, 'api');
    assert.equal(one.dtls.state, 'new'); // fake answers: no media
    assert.equal(one.ice.state, 'new');
    assert.equal(one.ice.selected, null);
    assert.equal(one.srtp_ready, false);
    assert.equal(one.published_streams.length, 3); // audio, video, video RTX from the answer
    assert.equal((await fetch(`${server.apiUrl}/stats/connections/nobody`)).status, 404);

    // REST style.
    let r = await fetch(`${server.apiUrl}/connections/${a.id}`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { connection_id: a.id, status: 'disconnected' });
    assert.deepEqual(await a.waitClose(), { code: 4000, reason: 'disconnected by the API' });
    await b.nextNotify('connection.destroyed');
    r = await fetch(`${server.apiUrl}/connections/${a.id}`, { method: 'DELETE' });
    assert.equal(r.status, 404);

    // Sora style: POST / with x-sora-target; the channel must match.
    const sora = (body) => fetch(`${server.apiUrl}/`, {
      method: 'POST',
      headers: { 'x-sora-target': 'Sora_20151104.DisconnectConnection', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal((await sora({ channel_id: 'other', connection_id: b.id })).status, 404);
    assert.equal((await sora({ channel_id: 'api' })).status, 400);
    r = await sora({ channel_id: 'api', connection_id: b.id });
    assert.equal(r.status, 200);
    assert.deepEqual(await b.waitClose(), { code: 4000, reason: 'disconnected by the API' });

    // POST /connections/<id>/disconnect, on a connection still waiting for its answer.
    const c = await connectClient(server.url, { role: 'sendrecv', channel_id: 'api2' });
    const cid = (await c.next('offer')).connection_id;
    r = await fetch(`${server.apiUrl}/connections/${cid}/disconnect`, { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal((await c.waitClose()).code, 4000);
    assert.equal((await fetch(`${server.apiUrl}/nothing`)).status, 404);
    assert.equal((await fetch(`${server.apiUrl}/health`, { method: 'PUT' })).status, 405);
    await waitUntil(async () => (await (await fetch(`${server.apiUrl}/stats/connections`)).json()).length === 0);
  } finally {
    await server.stop();
  }
});

test('SIGTERM: clients get 1001 "server shutting down", the process exits 0', async () => {
  const server = await startServer({ shutdown_timeout: '2 s', ping_interval: '1 min' });
  const a = await member(server, 'term');
  const b = await connectClient(server.url, { role: 'recvonly', channel_id: 'term' });
  await b.next('offer'); // never answers
  // A bare WebSocket that never sends connect, and stops reading.
  const idle = new SoraClient(server.url);
  await idle.opened;
  idle.ws._socket.pause();
  const t0 = Date.now();
  process.kill(server.pid, 'SIGTERM');
  for (const c of [a, b]) {
    assert.deepEqual(await c.waitClose(5000), { code: 1001, reason: 'server shutting down' });
  }
  await waitUntil(() => !server.alive(), 10000);
  const result = await server.stop(); // throws unless exit code 0 (and no sanitizer report)
  const elapsed = Date.now() - t0;
  assert.equal(result.code, 0);
  assert.ok(elapsed < 8000, `exited after ${elapsed} ms (shutdown_timeout 2 s)`);
  assert.match(server.log, /signal 15: shutting down/);
});

test('SIGHUP reopens log_file; lines carry the connection id and never secrets', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-log-'));
  const file = path.join(dir, 'hisoka.log');
  const server = await startServer({ log_file: file, log_level: 'debug', ping_interval: '1 min' });
  try {
    await waitUntil(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('started with'));
    fs.renameSync(file, `${file}.1`);
    process.kill(server.pid, 'SIGHUP');
    await waitUntil(() => fs.existsSync(file));
    const a = await member(server, 'logs');
    a.send({ type: 'disconnect' });
    await a.waitClose();
    const fresh = await waitUntil(() => {
      const t = fs.readFileSync(file, 'utf8');
      return t.includes('closing: 1000') ? t : null;
    });
    const old = fs.readFileSync(`${file}.1`, 'utf8');
    assert.match(fresh, /SIGHUP: log file reopened/);
    assert.ok(!old.includes(a.id), 'nothing about the new connection in the rotated file');
    const connectLine = fresh.split('\n').find((l) => l.includes('connect: channel logs'));
    assert.ok(connectLine, 'connect line in the new file');
    assert.ok(connectLine.includes(`[${a.id}]`), `connection id on the line: ${connectLine}`);
    const pwd = /a=ice-pwd:(\S+)/.exec(a.offer.sdp)[1];
    assert.ok(!fresh.includes(pwd) && !old.includes(pwd), 'ICE password never logged');
    assert.ok(!fresh.includes('a=fingerprint') && !fresh.includes('v=0'), 'no SDP in the log');
    assert.equal(server.log, '', 'nothing on stderr when log_file is set');
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('log_format json with log_file: one JSON object per line', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-log-'));
  const file = path.join(dir, 'hisoka.log');
  const server = await startServer({ log_file: file, log_format: 'json', ping_interval: '1 min' });
  try {
    const a = await member(server, 'json');
    a.send({ type: 'disconnect' });
    await a.waitClose();
    const text = await waitUntil(() => {
      const t = fs.readFileSync(file, 'utf8');
      return t.includes('closing: 1000') ? t : null;
    });
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    for (const l of lines) {
      assert.equal(typeof l.time, 'string');
      assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level));
      assert.equal(typeof l.message, 'string');
    }
    assert.ok(lines.some((l) => l.connection_id === a.id && /connect: channel json/.test(l.message)));
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
