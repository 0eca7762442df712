// ICE-TCP (media_tcp_port, RFC 6544 / RFC 4571) and TURN credentials, black box:
//   - offers carry the passive TCP candidate and config.iceServers with TURN REST
//     credentials that coturn's use-auth-secret would accept;
//   - a framed STUN check over TCP is answered, framed, and selects a tcp path;
//   - hostile framing: lengths that lie, a 64 KiB frame, a slowloris connection, and
//     10,000 connections that never send STUN (all on loopback). After each, a
//     well-behaved TCP peer still gets its checks answered and signaling still serves.
// (The stalled reader, which needs real media, is in tests/browser/restricted.test.mjs.)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { afterEach, test } from 'node:test';

import { assertServes, freshChannel, join, sleep, stats } from '../lib/abuse.mjs';
import { scrape } from '../lib/metrics.mjs';
import { freePort, startServer } from '../lib/server.mjs';
import { bindingRequest, iceCredentials, isBindingSuccess } from '../lib/stun.mjs';

const TURN_SECRET = 'coturn-static-auth-secret-for-tests';
const TURN_URLS = 'turn:127.0.0.1:3478?transport=udp, turns:localhost:443?transport=tcp';

const opened = [];
afterEach(() => {
  for (const o of opened.splice(0)) {
    try { o.destroy ? o.destroy() : o.close(); } catch { /* already closed */ }
  }
});

async function tcpServer(overrides = {}) {
  const mediaTcpPort = await freePort();
  const server = await startServer({
    media_tcp_port: mediaTcpPort, turn_urls: TURN_URLS, turn_secret: TURN_SECRET,
    log_level: 'info', ...overrides,
  });
  return server;
}

const frame = (buf) => Buffer.concat([Buffer.from([buf.length >> 8, buf.length & 0xff]), buf]);

// A TCP connection to the ICE-TCP port that collects the frames it receives.
function connectTcp(server, { localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port: server.config.media_tcp_port, host: '127.0.0.1', localAddress });
    opened.push(sock);
    const s = { sock, frames: [], closed: false, buffered: Buffer.alloc(0) };
    sock.on('data', (d) => {
      s.buffered = Buffer.concat([s.buffered, d]);
      while (s.buffered.length >= 2) {
        const n = s.buffered.readUInt16BE(0);
        if (s.buffered.length < 2 + n) break;
        s.frames.push(s.buffered.subarray(2, 2 + n));
        s.buffered = s.buffered.subarray(2 + n);
      }
    });
    sock.on('close', () => { s.closed = true; });
    sock.on('error', () => { s.closed = true; });
    sock.once('connect', () => resolve(s));
    sock.once('error', reject);
  });
}

async function waitUntil(cond, ms, step = 25) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(step);
  }
  return cond();
}

// Sends one framed binding request and says whether a framed success came back.
async function tcpCheck(s, creds, useCandidate = true) {
  const before = s.frames.filter(isBindingSuccess).length;
  s.sock.write(frame(bindingRequest({ ...creds, useCandidate })));
  return waitUntil(() => s.frames.filter(isBindingSuccess).length > before, 2000);
}

// A member whose ICE goes over TCP: joins, answers, and checks from a TCP connection.
async function tcpMember(server, options = {}) {
  const member = await join(server.url, freshChannel('tcp'));
  opened.push(member.client);
  const creds = iceCredentials(member.offer.sdp);
  const s = await connectTcp(server, options);
  assert.ok(await tcpCheck(s, creds), 'a framed STUN check over ICE-TCP is answered');
  return { ...member, creds, tcp: s };
}

async function connection(server, id) {
  const r = await fetch(`${server.apiUrl}/stats/connections/${id}`);
  assert.equal(r.status, 200);
  return r.json();
}

// A sample of a scrape: metric(m, 'name') or metric(m, 'name', {label: 'value'}).
function metric(m, name, labels = {}) {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return m.samples.get(l ? `${name}{${l}}` : name) ?? 0;
}

test('offers carry the passive ICE-TCP candidate and TURN REST credentials', async () => {
  const server = await tcpServer();
  try {
    const member = await join(server.url, freshChannel('offer'));
    opened.push(member.client);
    const { sdp, config } = member.offer;
    const port = server.config.media_tcp_port;
    assert.match(sdp, new RegExp(`a=candidate:\\d+ 1 tcp \\d+ 127\\.0\\.0\\.1 ${port} typ host tcptype passive`));
    assert.match(sdp, new RegExp(`a=candidate:\\d+ 1 udp \\d+ 127\\.0\\.0\\.1 ${server.config.media_port} typ host`));
    // UDP is preferred: its priority is higher.
    const prio = (proto) => Number(new RegExp(`a=candidate:\\d+ 1 ${proto} (\\d+)`).exec(sdp)[1]);
    assert.ok(prio('udp') > prio('tcp'));
    assert.equal(config.iceTransportPolicy, 'all');
    assert.equal(config.iceServers.length, 1);
    const [ice] = config.iceServers;
    assert.deepEqual(ice.urls, ['turn:127.0.0.1:3478?transport=udp', 'turns:localhost:443?transport=tcp']);
    const [expiry, id] = ice.username.split(':');
    assert.equal(id, member.offer.connection_id);
    const ttl = Number(expiry) - Date.now() / 1000;
    assert.ok(ttl > 86400 - 60 && ttl <= 86400 + 1, `valid for a day (${ttl} s)`);
    const expected = crypto.createHmac('sha1', TURN_SECRET).update(ice.username).digest('base64');
    assert.equal(ice.credential, expected);
  } finally {
    await server.stop();
  }
});

test('without turn_urls the offer has an empty iceServers; without media_tcp_port no tcp candidate', async () => {
  const server = await startServer({ log_level: 'info' });
  try {
    const member = await join(server.url, freshChannel('plain'));
    opened.push(member.client);
    assert.deepEqual(member.offer.config, { iceServers: [], iceTransportPolicy: 'all' });
    assert.doesNotMatch(member.offer.sdp, / tcp /);
  } finally {
    await server.stop();
  }
});

test('a framed STUN check over ICE-TCP is answered and selects a tcp path', async () => {
  const server = await tcpServer();
  try {
    const m = await tcpMember(server);
    const conn = await connection(server, m.id);
    assert.equal(conn.ice.selected.protocol, 'tcp');
    assert.equal(conn.ice.selected.path, 'tcp');
    assert.equal((await stats(server)).media.paths.tcp, 1);
    // The connection closing moves the transport off it.
    m.tcp.sock.destroy();
    assert.ok(await waitUntil(async () => (await connection(server, m.id)).ice.selected === null, 2000),
      'the closed connection is forgotten');
    const metrics = await scrape(server);
    assert.equal(metric(metrics, 'hisoka_ice_tuples_closed_total'), 1);
    assert.equal(metric(metrics, 'hisoka_media_paths', { path: 'tcp' }), 0);
  } finally {
    await server.stop();
  }
});

test('RFC 4571 lengths that lie: short frames, a length over the largest packet, a 64 KiB frame', async () => {
  const server = await tcpServer();
  try {
    const creds = iceCredentials((await tcpMember(server)).offer.sdp);
    // A length that promises more than comes, then the peer goes away.
    const a = await connectTcp(server);
    a.sock.write(Buffer.from([0x03, 0xe8, 1, 2, 3, 4]));
    await sleep(100);
    a.sock.end();
    // Zero-length frames are skipped; a valid check after them is still answered.
    const b = await connectTcp(server);
    b.sock.write(Buffer.from([0, 0, 0, 0]));
    assert.ok(await tcpCheck(b, creds, false), 'checks after empty frames are answered');
    // A length over the largest packet: closed at once, before any payload is read.
    const c = await connectTcp(server);
    c.sock.write(Buffer.from([0x06, 0x41]));
    assert.ok(await waitUntil(() => c.closed, 2000), 'a 1601-byte frame closes the connection');
    // A whole 64 KiB frame (65,535 bytes after the length).
    const d = await connectTcp(server);
    d.sock.write(Buffer.concat([Buffer.from([0xff, 0xff]), crypto.randomBytes(65535)]));
    assert.ok(await waitUntil(() => d.closed, 2000), 'a 64 KiB frame closes the connection');
    // A frame that holds garbage of a plausible size is dropped by the demultiplexer.
    b.sock.write(frame(crypto.randomBytes(1500)));
    assert.ok(await tcpCheck(b, creds, false), 'the connection still works after garbage');
    const metrics = await scrape(server);
    assert.equal(metric(metrics, 'hisoka_tcp_connections_closed_total', { reason: 'framing' }), 2);
    assert.equal(metric(metrics, 'hisoka_tcp_empty_frames_total'), 2);
    await tcpMember(server);
    await assertServes(server);
  } finally {
    await server.stop();
  }
});

test('slowloris: a connection that trickles a frame is closed 10 s after accept', async () => {
  const server = await tcpServer();
  try {
    const s = await connectTcp(server);
    const started = Date.now();
    s.sock.write(Buffer.from([0x00, 0x64])); // 100 bytes announced
    for (let i = 0; i < 60 && !s.closed; i++) {
      s.sock.write(Buffer.from([i])); // one byte every 250 ms: never a whole frame
      await sleep(250);
    }
    assert.ok(s.closed, 'closed');
    const after = Date.now() - started;
    assert.ok(after >= 9500 && after < 13000, `closed after ${after} ms`);
    const metrics = await scrape(server);
    assert.equal(metric(metrics, 'hisoka_tcp_connections_closed_total', { reason: 'no_check' }), 1);
    await tcpMember(server);
    await assertServes(server);
  } finally {
    await server.stop();
  }
});

test('10,000 TCP connections that never send STUN: bounded, and a peer from another address is served', async () => {
  const server = await tcpServer({ max_connections: 500, max_connections_per_address: 100 });
  try {
    const socks = [];
    let refusedByClose = 0;
    for (let batch = 0; batch < 20; batch++) {
      const opening = [];
      for (let i = 0; i < 500; i++) {
        opening.push(new Promise((resolve) => {
          const sock = net.connect({ port: server.config.media_tcp_port, host: '127.0.0.1' });
          sock.on('error', () => {});
          sock.on('close', () => { refusedByClose++; });
          sock.once('connect', () => resolve(sock));
          sock.once('error', () => resolve(sock));
        }));
      }
      socks.push(...await Promise.all(opening));
      const m = await scrape(server);
      assert.ok(metric(m, 'hisoka_tcp_connections') <= 100,
        `at most 100 open from one address (${metric(m, 'hisoka_tcp_connections')})`);
    }
    // Each was either accepted (at most 100 at a time; more once the first ones are
    // closed 10 s after accept, on a slow machine) or refused at once.
    const metrics = await scrape(server);
    const accepted = metric(metrics, 'hisoka_tcp_connections_accepted_total');
    const refused = metric(metrics, 'hisoka_tcp_connections_refused_total', { reason: 'per_address' });
    assert.equal(accepted + refused, 10000, `accepted ${accepted} + refused ${refused}`);
    assert.ok(refused >= 9000, `refused ${refused}`);
    assert.ok(refusedByClose >= refused - 100, `the refused were closed (${refusedByClose} of ${refused})`);
    // Another address is not held up by them.
    await tcpMember(server, { localAddress: '127.0.0.2' });
    await assertServes(server);
    for (const s of socks) s.destroy();
    // The ones that were accepted are gone 10 s after accept, STUN or not.
    assert.ok(await waitUntil(async () => metric(await scrape(server), 'hisoka_tcp_connections') <= 1, 13000, 250));
  } finally {
    await server.stop();
  }
});
