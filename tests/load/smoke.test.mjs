// Smoke test of the load generator against a real hisoka: one channel, one publisher,
// two subscribers, 5 s of media through real ICE, DTLS and SRTP. Asserts correctness
// only (no timing): nobody failed to join, no sampled frame was altered, loss under 1%,
// the latency figures are there (finite, >= 0; their values are not checked).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, apiRequest, freePort, startServer } from '../lib/server.mjs';

const LOAD_BIN = process.env.HISOKA_LOAD_BIN || path.join(ROOT, 'build/hisoka-load');
const RELAY_BIN = process.env.HISOKA_RELAY_BIN || path.join(path.dirname(LOAD_BIN), 'hisoka-raw-relay');

function runLoad(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(LOAD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', () => {});
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stderr }); });
  });
}

test('hisoka-load: 1 publisher, 2 subscribers, 5 s: joined, no altered frames, loss < 1%', async () => {
  const server = await startServer({ e2ee: 'true', log_level: 'warn' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-load-'));
  const out = path.join(dir, 'result.json');
  try {
    const r = await runLoad(['--url', server.url, '--channels', '1', '--publishers', '1',
      '--subscribers', '2', '--duration', '5', '--sample', '1', '--json', out], 60000);
    assert.equal(r.signal, null, `generator killed: ${r.stderr}`);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    console.log(`# ${JSON.stringify({
      sent: result.packets_sent, received: result.packets_received, loss_pct: result.loss_pct,
      verified: result.frames_verified, latency_us: result.latency_us,
      added_latency_us: result.added_latency_us, join_ms: result.join_ms,
    })}`);
    assert.equal(result.integrity_failures, 0, 'altered frames');
    assert.equal(result.peers_failed, 0, `peers failed to join: ${r.stderr}`);
    assert.equal(result.peers_without_media, 0, 'a subscriber received no media');
    assert.equal(result.join_ms.n, 2);
    assert.ok(result.packets_sent > 0);
    assert.ok(result.packets_received > 0);
    assert.ok(result.frames_verified > 0, 'no sampled frame was verified');
    assert.ok(result.loss_pct < 1, `loss ${result.loss_pct}%`);
    // added latency (kernel receive timestamp - publisher send complete): present, not judged
    for (const k of ['p50', 'p99', 'p999']) {
      const v = result.added_latency_us?.[k];
      assert.ok(typeof v === 'number' && Number.isFinite(v) && v >= 0, `added_latency_us.${k} = ${v}`);
    }
    assert.ok(result.added_latency_us.n > 0, 'no added-latency sample');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(server.alive());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});

test('hisoka-load --transport tcp: 1 -> 2 over ICE-TCP, 3 s: joined, no altered frames, loss < 1%', async () => {
  const server = await startServer({ e2ee: 'true', log_level: 'warn', media_tcp_port: await freePort() });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-load-'));
  const out = path.join(dir, 'result.json');
  try {
    const r = await runLoad(['--url', server.url, '--transport', 'tcp', '--channels', '1',
      '--publishers', '1', '--subscribers', '2', '--duration', '3', '--sample', '1', '--json', out], 60000);
    assert.equal(r.signal, null, `generator killed: ${r.stderr}`);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    console.log(`# ${JSON.stringify({
      transport: result.transport, sent: result.packets_sent, received: result.packets_received,
      loss_pct: result.loss_pct, verified: result.frames_verified, tcp_send_drops: result.tcp_send_drops,
    })}`);
    assert.equal(result.transport, 'tcp');
    assert.equal(result.integrity_failures, 0, 'altered frames');
    assert.equal(result.peers_failed, 0, `peers failed to join: ${r.stderr}`);
    assert.equal(result.peers_without_media, 0, 'a subscriber received no media');
    assert.ok(result.frames_verified > 0, 'no sampled frame was verified');
    assert.ok(result.loss_pct < 1, `loss ${result.loss_pct}%`);
    assert.equal(result.tcp_closed_after_join, 0, 'an ICE-TCP connection was lost');
    assert.equal(r.code, 0, r.stderr);
    // the media went over ICE-TCP: three connections selected as the tcp path
    const m = (await apiRequest(server, '/metrics')).text;
    const sel = m.match(/^hisoka_media_path_selections_total\{path="tcp"\} (\d+)$/m);
    assert.ok(sel && Number(sel[1]) >= 3, `tcp path selections: ${sel && sel[1]}`);
    assert.ok(server.alive());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});

test('hisoka-load: altered frames are a hard failure (raw relay corrupting every 40th packet)', async () => {
  const port = await freePort();
  const relay = spawn(RELAY_BIN, ['--port', String(port), '--corrupt', '40'], { stdio: 'ignore' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-load-'));
  const out = path.join(dir, 'result.json');
  try {
    await new Promise((r) => setTimeout(r, 200));
    const r = await runLoad(['--mode', 'raw', '--relay', `127.0.0.1:${port}`, '--publishers', '1',
      '--subscribers', '1', '--duration', '2', '--sample', '1', '--json', out], 30000);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.ok(result.integrity_failures > 0, 'corruption went unnoticed');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ALTERED/);
  } finally {
    relay.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// The generator's simulcast mode against hisoka's downlink adaptation: 5 sendrecv members
// each publishing r0/r1/r2 (50, 200 and 800 kbit/s) with rid and dependency descriptor, every
// receiver answering with transport-cc feedback, one of them dropping what exceeds
// 400 kbit/s. hisoka must learn it: while media flows, that receiver's estimate stays within
// 3x the cap (a policer drops without queueing: only loss tells) and every track it gets is
// below r2, while another
// receiver's estimate grows past what four r2 layers need and it gets r2 of everyone. Layer
// switches need key frames, which the publishers make when hisoka PLIs a layer.
test('hisoka-load --simulcast --capped: a capped receiver gets the low layers, the others r2', async () => {
  const server = await startServer({ e2ee: 'true', log_level: 'warn' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-load-'));
  const out = path.join(dir, 'result.json');
  try {
    const run = runLoad(['--url', server.url, '--channels', '1', '--publishers', '0', '--subscribers', '0',
      '--members', '5', '--connect-interval-ms', '100', '--simulcast', '--capped', '1', '--cap-kbps', '400',
      '--video-kbps', '800', '--no-audio', '--duration', '16', '--sample', '2', '--json', out], 90000);
    // Poll the server's view while media flows.
    let seen = null;
    let last = null;
    const deadline = Date.now() + 30000;
    while (!seen && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      const list = await apiRequest(server, '/stats/connections').then((r) => JSON.parse(r.text), () => []);
      const views = [];
      for (const c of list) {
        const one = await apiRequest(server, `/stats/connections/${c.connection_id}`).then((r) => JSON.parse(r.text), () => null);
        if (!one?.bwe) continue;
        const rids = (one.consumers || []).filter((x) => x.simulcast).map((x) => x.simulcast.current_rid);
        views.push({ id: c.connection_id, estimate: one.bwe.estimate_bps, rids });
      }
      last = views;
      const capped = views.filter((v) => v.estimate < 1200000 && v.rids.length === 4 && v.rids.every((x) => x === 'r0' || x === 'r1'));
      const free = views.filter((v) => v.estimate > 3200000 && v.rids.length === 4 && v.rids.every((x) => x === 'r2'));
      if (views.length === 5 && capped.length === 1 && free.length >= 1) {
        // /metrics counts the same tracks by layer: all 20 (5 members x 4 senders), the
        // free receivers' at r2.
        const m = (await apiRequest(server, '/metrics')).text;
        const byRid = Object.fromEntries(['none', 'r0', 'r1', 'r2'].map((rid) => [rid,
          Number(m.match(new RegExp(`^hisoka_simulcast_consumers\\{rid="${rid}"\\} (\\d+)$`, 'm'))?.[1] ?? NaN)]));
        seen = { capped, free, byRid };
      }
    }
    const r = await run;
    assert.equal(r.signal, null, `generator killed: ${r.stderr}`);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    console.log(`# ${JSON.stringify({ adaptive: result.adaptive, verified: result.frames_verified, last })}`);
    assert.ok(seen, `a capped receiver below r2 and a free one at r2 of every sender; last view: ${JSON.stringify(last)}`);
    const { byRid } = seen;
    assert.equal(byRid.none + byRid.r0 + byRid.r1 + byRid.r2, 20, `/metrics simulcast consumers ${JSON.stringify(byRid)}`);
    assert.ok(byRid.r2 >= 4 * seen.free.length, `/metrics simulcast consumers ${JSON.stringify(byRid)}`);
    assert.equal(result.integrity_failures, 0, 'altered frames');
    assert.equal(result.peers_failed, 0, `peers failed to join: ${r.stderr}`);
    assert.ok(result.frames_verified > 0, 'no sampled frame was verified');
    assert.ok(result.adaptive.twcc_feedback_sent > 0, 'receivers sent transport-cc feedback');
    assert.ok(result.adaptive.plis_received > 0 && result.adaptive.keyframes_sent > 15,
      'layer switches asked for key frames');
    assert.ok(result.adaptive.free_kbps > 3 * result.adaptive.capped_kbps,
      `free receivers got ${result.adaptive.free_kbps} kbit/s, the capped one ${result.adaptive.capped_kbps}`);
    assert.ok(server.alive());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});

// A channel larger than one worker: workers = 2 and channel_spread_threshold = 30, so of
// 1 publisher and 60 subscribers, 30 share the publisher's worker and 30 get its media
// through a relay to the other worker. Every subscriber receives every frame unaltered.
test('hisoka-load: 1 -> 60 over two workers (threshold 30): all 60 receive, nothing altered', async () => {
  const server = await startServer({ e2ee: 'true', log_level: 'info', workers: 2,
    channel_spread_threshold: 30, max_connections_per_channel: 100 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-load-'));
  const out = path.join(dir, 'result.json');
  try {
    const r = await runLoad(['--url', server.url, '--channels', '1', '--publishers', '1',
      '--subscribers', '60', '--duration', '5', '--sample', '1', '--json', out], 90000);
    assert.equal(r.signal, null, `generator killed: ${r.stderr}`);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    const stats = JSON.parse((await apiRequest(server, '/stats')).text);
    console.log(`# ${JSON.stringify({ sent: result.packets_sent, received: result.packets_received,
      loss_pct: result.loss_pct, verified: result.frames_verified, workers: stats.workers,
      relay_packets: stats.media.relay_packets, relay_dropped: stats.media.relay_dropped })}`);
    assert.equal(result.peers_failed, 0, `peers failed to join: ${r.stderr}`);
    assert.equal(result.peers_without_media, 0, 'a subscriber received no media');
    assert.equal(result.integrity_failures, 0, 'altered frames');
    assert.ok(result.frames_verified > 0, 'no sampled frame was verified');
    assert.ok(result.loss_pct < 1, `loss ${result.loss_pct}%`);
    assert.equal((server.log.match(/relays its (audio|video) from worker 0 to worker 1/g) || []).length, 2,
      'one relay of each kind from the publisher\'s worker to the other');
    // Each worker fanned out to its 30 subscribers (about half of what they received;
    // subscribers that joined later missed the first packets): the second only from the
    // relay, which carried every packet.
    assert.ok(stats.media.relay_packets >= result.packets_sent, 'every packet went through the relay');
    for (const w of stats.workers) {
      assert.ok(w.forwarded_packets >= 0.45 * result.packets_received,
        `worker ${w.index} forwarded ${w.forwarded_packets} of the ${result.packets_received} received`);
    }
    assert.equal(stats.workers[1].rtp_packets_in, 0, 'nothing was published on the second worker');
    assert.equal(r.code, 0, r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});
