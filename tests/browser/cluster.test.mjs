// Acceptance of the cluster (README "Cluster") with sora-js-sdk, unmodified, in Chromium:
// a real redis-server and two hisoka nodes, each in its own network namespace (hk-cl-r,
// hk-cl-a, hk-cl-b) with its own address on a bridge (10.207.0.0/24) that Chromium, in the
// root namespace, reaches directly; each node's cluster_node_url is its own address, so a
// redirect names another host. Clients that connect to node B for a channel on node A
// follow Sora's redirect and decode each other; after kill -9 of A's process the channel
// is rejoined on B within 10 s; with the redis-server process stopped the call goes on, a
// new channel is refused with 4503 CLUSTER-UNAVAILABLE, and placement resumes when Redis
// returns. Needs root (ip netns, ip link).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchChromium } from '../lib/browser.mjs';
import { metric, sleep, startNode, startRedis, until } from '../lib/cluster.mjs';
import { createLan } from '../lib/netns.mjs';
import { ROOT } from '../lib/server.mjs';

const SDK_DIR = path.join(ROOT, 'tests/node_modules/sora-js-sdk');
const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version;
const SDK_SOURCE = fs.readFileSync(path.join(SDK_DIR, 'dist/sora.js'));

// Its own subnet and namespace names: other tests use 10.201.0.x.
const NS_A = 'hk-cl-a';
const NS_B = 'hk-cl-b';
const NS_R = 'hk-cl-r';

let lan;
let redis;
let a;
let b;
let browser;

before(async () => {
  lan = createLan('hk-cl-br', '10.207.0.1/24',
    { [NS_A]: '10.207.0.2', [NS_B]: '10.207.0.3', [NS_R]: '10.207.0.4' });
  redis = await startRedis(undefined, { wrap: lan.ns[NS_R].wrap, host: lan.ns[NS_R].address });
  a = await startNode(redis.url, {}, { wrap: lan.ns[NS_A].wrap, address: lan.ns[NS_A].address });
  b = await startNode(redis.url, {}, { wrap: lan.ns[NS_B].wrap, address: lan.ns[NS_B].address });
  // Chromium lets a page reach the local network (10.207.0.x) only from an origin there
  // (Local Network Access), and getUserMedia needs a secure context: the page is on b's
  // API origin, declared secure.
  browser = await launchChromium({ args: [`--unsafely-treat-insecure-origin-as-secure=${b.apiUrl}`] });
});

after(async () => {
  try {
    await browser?.close();
    if (a?.alive()) await a.stop();
    if (b?.alive()) await b.stop();
    await redis?.stop();
  } finally {
    lan?.destroy();
  }
});

// The process pid is that program (not a wrapper) and runs in a network namespace other
// than this test's.
function inOwnNamespace(pid, program) {
  assert.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), program);
  assert.notEqual(fs.readlinkSync(`/proc/${pid}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
}

// A page on b's API origin (b lives through every test) with the SDK at /sdk/sora.js,
// served by playwright itself. page.join(url, channel) connects one sendrecv client with
// the fake camera and microphone (disconnecting the page's previous one) and returns its
// connection id and the signaling URL it ended on, or its error.
async function sdkPage() {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const sdkUrl = `${b.apiUrl}/sdk/sora.js`;
  await page.route(sdkUrl, (route) => route.fulfill({
    status: 200, contentType: 'application/javascript', body: SDK_SOURCE,
  }));
  await page.goto(`${b.apiUrl}/health`);
  await page.evaluate(async (sdkUrl) => {
    const { default: Sora } = await import(sdkUrl);
    window.sdkVersion = Sora.version();
    window.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    window.join = async (signalingUrl, channelId) => {
      if (window.conn) await window.conn.disconnect().catch(() => {});
      const t = { remote: {}, redirects: 0 };
      window.t = t;
      const conn = Sora.connection(signalingUrl).sendrecv(channelId, null, { audio: true, video: true });
      window.conn = conn;
      conn.on('track', (event) => {
        const r = t.remote[event.streams[0].id] || (t.remote[event.streams[0].id] = { tracks: [] });
        r.tracks.push(event.track);
      });
      conn.on('signaling', (event) => { if (event.type === 'onmessage-redirect') t.redirects++; });
      try {
        await conn.connect(window.stream);
      } catch (e) {
        return { error: `${e.message}` };
      }
      return { connectionId: conn.connectionId, signalingUrl: conn.connectedSignalingUrl,
        redirects: t.redirects };
    };
    // Video frames decoded of each remote stream (by the sender's connection id).
    window.decoded = async () => {
      const pc = window.conn?.pc;
      if (!pc) return {};
      const report = await pc.getStats();
      const byMid = {};
      report.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') byMid[s.mid] = s; });
      const midOf = {};
      for (const tr of pc.getTransceivers()) if (tr.receiver.track) midOf[tr.receiver.track.id] = tr.mid;
      const out = {};
      for (const [id, r] of Object.entries(window.t.remote)) {
        const v = r.tracks.find((x) => x.kind === 'video');
        out[id] = v ? (byMid[midOf[v.id]]?.framesDecoded || 0) : 0;
      }
      return out;
    };
  }, sdkUrl);
  assert.equal(await page.evaluate(() => window.sdkVersion), SDK_VERSION);
  return {
    page,
    join: (url, channel) => page.evaluate(({ url, channel }) => window.join(url, channel), { url, channel }),
    decoded: () => page.evaluate(() => window.decoded()),
  };
}

async function mustJoin(client, url, channel) {
  const r = await client.join(url, channel);
  assert.ok(!r.error, `connect to ${url}: ${r.error}\nnode log:\n${(url === a.url ? a : b).log.slice(-2000)}`);
  return r;
}

// Both decode at least `frames` more video frames of each other within 15 s.
async function decodeEachOther(x, y, frames = 30) {
  const before = [await x.decoded(), await y.decoded()];
  const ok = await until(async () => {
    const dx = await x.decoded();
    const dy = await y.decoded();
    return (dx[y.id] ?? 0) - (before[0][y.id] ?? 0) >= frames &&
      (dy[x.id] ?? 0) - (before[1][x.id] ?? 0) >= frames;
  }, 15000, 250);
  assert.ok(ok, `decoding each other: ${JSON.stringify([await x.decoded(), await y.decoded()])}`);
}

const channel = `cluster-sdk-${process.pid}`;
let x;
let y;

test(`sora-js-sdk ${SDK_VERSION}: a client at node B for a channel on node A is redirected, and both decode each other`, async () => {
  x = await sdkPage();
  y = await sdkPage();
  // Both nodes idle: the channel stays where its first client arrives, on a.
  assert.notEqual(new URL(a.url).hostname, new URL(b.url).hostname, 'the nodes are two hosts');
  const rx = await mustJoin(x, a.url, channel);
  x.id = rx.connectionId;
  assert.equal(redis.cli('GET', `hisoka:channel:${channel}`), a.nodeId);
  const ry = await mustJoin(y, b.url, channel);
  y.id = ry.connectionId;
  assert.equal(ry.signalingUrl, a.url, 'the SDK followed the redirect to a');
  assert.equal(metric(await b.metrics(), 'hisoka_cluster_redirects_total'), 1);
  await decodeEachOther(x, y);
});

test('kill -9 of node A: the channel is rejoined within 10 s and lands on B', async (t) => {
  inOwnNamespace(a.pid, 'hisoka');
  a.kill9();
  const killed = Date.now();
  // Until a is known dead (5 s without a refresh) b redirects to it and the SDK fails
  // to reach it; the client tries again every half second.
  let r = null;
  for (let i = 0; i < 60 && Date.now() - killed < 20000; i++) {
    r = await x.join(b.url, channel);
    if (!r.error) break;
    await sleep(500);
  }
  const elapsed = Date.now() - killed;
  assert.ok(r && !r.error, `rejoined: ${JSON.stringify(r)}`);
  assert.ok(elapsed <= 10000, `rejoined after ${elapsed} ms`);
  t.diagnostic(`rejoined ${elapsed} ms after kill -9`);
  assert.equal(r.signalingUrl, b.url, 'on b, without a redirect');
  assert.equal(redis.cli('GET', `hisoka:channel:${channel}`), b.nodeId);
  x.id = r.connectionId;
  const ry = await mustJoin(y, b.url, channel);
  y.id = ry.connectionId;
  await decodeEachOther(x, y);
});

test('Redis stopped: the call goes on, a new channel is refused, and service resumes when Redis returns', async () => {
  const port = redis.port;
  inOwnNamespace(redis.pid, 'redis-server');
  await redis.stop();
  assert.ok(await until(async () => (await b.health()).body.cluster.redis === 'down', 10000),
    'b noticed');
  await decodeEachOther(x, y);
  const z = await sdkPage();
  const refused = await z.join(b.url, `${channel}-new`);
  assert.match(refused.error ?? '', /4503/, JSON.stringify(refused));
  assert.match(refused.error, /CLUSTER-UNAVAILABLE/);

  redis = await startRedis(port, { wrap: lan.ns[NS_R].wrap, host: lan.ns[NS_R].address });
  assert.ok(await until(async () => (await b.health()).body.cluster.redis === 'up', 15000),
    `b reconnected:\n${b.log.slice(-3000)}`);
  const ok = await mustJoin(z, b.url, `${channel}-new`);
  assert.equal(ok.signalingUrl, b.url);
  await decodeEachOther(x, y, 10);
  await z.page.close();
  await x.page.evaluate(() => window.conn.disconnect());
  await y.page.evaluate(() => window.conn.disconnect());
  await x.page.close();
  await y.page.close();
});
