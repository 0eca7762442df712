// The docker/compose.yaml topology without Docker (run by docker/compose-test.sh, which
// creates the namespaces and the veth pair and passes their names): hisoka in the
// "server" namespace listening on its veth address, which it also announces
// (public_ipv4_address), and three headless Chromium members in the "browsers"
// namespace. Each member must decode both others' video over the veth link, with the
// ICE pair on the veth addresses; the API (/health, /metrics) answers on the same
// address.
//
// Two nodes share a Redis (README "Cluster"), as in docker/compose.yaml: in the server
// namespace, a redis-server on its loopback and a second hisoka on the same veth address
// with other ports. A call runs through each node, and a connect at node 2 for node 1's
// channel is redirected there.
//
// Remote mode (the browser-tests service of docker/compose.yaml): with
// HISOKA_SIGNALING_URL, HISOKA_API_URL and HISOKA_MEDIA_PORT set (and _2 of the first
// two for the second node), no server is started and Chromium runs where the test runs;
// HK_SERVER_ADDR, HK_SERVER_ADDR_2 and HK_BROWSER_ADDR are then the services' static
// addresses.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { CallMember, launchChromium, waitFor } from '../lib/browser.mjs';
import { freePorts, startRedis } from '../lib/cluster.mjs';
import { startServer } from '../lib/server.mjs';

const NS_SERVER = process.env.HK_NS_SERVER;
const NS_BROWSER = process.env.HK_NS_BROWSER;
const SERVER_ADDR = process.env.HK_SERVER_ADDR;
const BROWSER_ADDR = process.env.HK_BROWSER_ADDR;
const SERVER_ADDR_2 = process.env.HK_SERVER_ADDR_2 || SERVER_ADDR;

const REMOTE = !!process.env.HISOKA_SIGNALING_URL;

let hisoka;
let hisoka2;
let redis;
let server2;
// The API is reached from another host here, so it needs api_secret (docker/sora.compose.conf
// has the same value for the Compose run).
const API_SECRET = process.env.HISOKA_API_SECRET || 'compose-test-secret-0123456789';
let server; // what CallMember.join needs: the URLs on the veth address
let mediaPort;
let browser;
let wrapperDir;

before(async () => {
  assert.ok(SERVER_ADDR && BROWSER_ADDR && (REMOTE || (NS_SERVER && NS_BROWSER)),
    'run through docker/compose-test.sh (make compose-test), which creates the namespaces');
  if (REMOTE) {
    server = { url: process.env.HISOKA_SIGNALING_URL, apiUrl: process.env.HISOKA_API_URL };
    server2 = { url: process.env.HISOKA_SIGNALING_URL_2, apiUrl: process.env.HISOKA_API_URL_2 };
    assert.ok(server2.url && server2.apiUrl, 'HISOKA_SIGNALING_URL_2 and HISOKA_API_URL_2');
    mediaPort = Number(process.env.HISOKA_MEDIA_PORT);
    server.mediaPort = server2.mediaPort = mediaPort;
  } else {
    const wrap = ['ip', 'netns', 'exec', NS_SERVER];
    redis = await startRedis(undefined, { wrap });
    const node = async () => {
      const [signaling, api, media] = await freePorts();
      const n = await startServer({
        listen_address: SERVER_ADDR,
        public_ipv4_address: SERVER_ADDR,
        signaling_port: signaling,
        api_port: api,
        media_port: media,
        api_secret: API_SECRET,
        log_level: 'info',
        cluster_redis_url: redis.url,
        cluster_node_url: `ws://${SERVER_ADDR}:${signaling}/signaling`,
      }, { wrap });
      return { n, view: {
        url: `ws://${SERVER_ADDR}:${signaling}/signaling`,
        apiUrl: `http://${SERVER_ADDR}:${api}`,
        mediaPort: media,
      } };
    };
    ({ n: hisoka, view: server } = await node());
    ({ n: hisoka2, view: server2 } = await node());
    mediaPort = hisoka.config.media_port;
  }  // Playwright drives Chromium over pipes, so a launcher that enters the browsers'
  // namespace is all it takes. getUserMedia needs a secure context: the page's plain
  // http:// origin on the veth address is declared one (as a TLS front would make it).
  wrapperDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-compose-'));
  const launcher = path.join(wrapperDir, 'chromium');
  fs.writeFileSync(launcher, '#!/bin/sh\n'
    + `exec ${REMOTE ? '' : `ip netns exec ${NS_BROWSER} `}/usr/bin/chromium `
    + `--unsafely-treat-insecure-origin-as-secure=${server.apiUrl},${server2.apiUrl} "$@"\n`);
  fs.chmodSync(launcher, 0o755);
  browser = await launchChromium({ executablePath: launcher });
});

after(async () => {
  await browser?.close();
  await hisoka2?.stop();
  await hisoka?.stop();
  await redis?.stop();
  if (wrapperDir) fs.rmSync(wrapperDir, { recursive: true, force: true });
});

// The addresses of the candidate pair ICE selected, from the page's RTCPeerConnection.
function selectedPair(member) {
  return member.page.evaluate(async () => {
    const report = await window.hisokaTest.state.pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && report.get(pairId);
    if (!pair) return null;
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    return {
      local: local && { address: local.address, port: local.port, type: local.candidateType },
      remote: remote && { address: remote.address, port: remote.port, type: remote.candidateType },
    };
  });
}

function fetchText(member, urlPath, secret = API_SECRET) {
  return member.page.evaluate(async ({ p, secret }) => {
    const r = await fetch(p, secret ? { headers: { authorization: `Bearer ${secret}` } } : {});
    return { status: r.status, text: await r.text() };
  }, { p: urlPath, secret });
}

function sampleValue(metrics, name) {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

// A page on node's API origin, once the node is registered in Redis (its /health says so;
// Compose's healthcheck only asks for 200, which a node without Redis answers too).
async function clusterReady(node) {
  const page = await browser.context.newPage();
  await page.goto(`${node.apiUrl}/health`);
  const ready = await waitFor(() => page.evaluate(async () =>
    (await (await fetch('/health')).json()).cluster?.redis === 'up'), 20000, 500);
  const health = await page.evaluate(async () => (await fetch('/health')).text());
  await page.close();
  assert.ok(ready, `${node.apiUrl}: registered in Redis (${health})`);
}

// Three members in channel on node (whose veth address is serverAddr) decode each other.
async function callThrough(node, serverAddr, channel) {
  await clusterReady(node);
  const members = [];
  for (let i = 0; i < 3; i++) {
    members.push(await CallMember.join(browser, node, { role: 'sendrecv', channel_id: channel }));
  }
  const ids = members.map((m) => m.id);

  // Every member decodes video (and receives audio) of both others...
  for (const m of members) {
    const others = ids.filter((id) => id !== m.id);
    const ok = await waitFor(async () => {
      const s = await m.stats();
      return others.every((id) => s.remote[id] && s.remote[id].framesDecoded > 0);
    }, 20000);
    assert.ok(ok, `${m.id} decodes both others: ${JSON.stringify((await m.stats()).remote)}`);
  }
  // ...and keeps decoding: framesDecoded grows.
  const first = await Promise.all(members.map((m) => m.stats()));
  await new Promise((r) => setTimeout(r, 3000));
  const second = await Promise.all(members.map((m) => m.stats()));
  for (let i = 0; i < members.length; i++) {
    for (const id of ids.filter((x) => x !== members[i].id)) {
      assert.ok(second[i].remote[id].framesDecoded > first[i].remote[id].framesDecoded,
        `${members[i].id} keeps decoding ${id}`);
      assert.ok(second[i].remote[id].totalSamplesReceived > 0, `${members[i].id} hears ${id}`);
    }
  }

  // ICE: the server's host candidate is its veth address (public_ipv4_address), the
  // browser's side is the browser namespace's veth address.
  for (const m of members) {
    const pair = await selectedPair(m);
    assert.ok(pair && pair.remote && pair.local, `${m.id}: a selected candidate pair`);
    assert.equal(pair.remote.address, serverAddr, `${m.id}: remote candidate ${JSON.stringify(pair.remote)}`);
    assert.equal(pair.remote.port, node.mediaPort ?? mediaPort);
    assert.equal(pair.remote.type, 'host');
    assert.equal(pair.local.address, BROWSER_ADDR, `${m.id}: local candidate ${JSON.stringify(pair.local)}`);
  }

  // The API answers on the compose network: health and metrics, as a probe would see them.
  const health = await fetchText(members[0], '/health', null);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.text).status, 'ok');
  assert.equal(JSON.parse(health.text).cluster.redis, 'up');
  const metrics = await fetchText(members[0], '/metrics', null);
  assert.equal(metrics.status, 200);
  assert.equal(sampleValue(metrics.text, 'hisoka_connections'), 3);
  assert.equal(sampleValue(metrics.text, 'hisoka_channels'), 1);
  assert.ok(sampleValue(metrics.text, 'hisoka_forwarded_packets_total') > 0, 'packets forwarded');
  assert.ok(sampleValue(metrics.text, 'hisoka_dtls_handshakes_total') >= 3, 'three DTLS handshakes');
  // Connection details need the secret: without it 401, with it the details.
  assert.equal((await fetchText(members[0], `/stats/connections/${ids[0]}`, null)).status, 401);
  const detail = JSON.parse((await fetchText(members[0], `/stats/connections/${ids[0]}`)).text);
  assert.equal(detail.ice.selected.address, BROWSER_ADDR);
  assert.equal(detail.dtls.state, 'connected');

  return members;
}

test('three members call through hisoka (node 1) across the veth link', async () => {
  const members = await callThrough(server, SERVER_ADDR, 'compose');
  // A connect at node 2 for node 1's channel is redirected to node 1 (Sora's redirect).
  const page = members[0].page;
  const answer = await page.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => resolve('no answer in 10 s'), 10000);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connect', role: 'sendrecv', channel_id: 'compose' }));
    ws.onmessage = (e) => { clearTimeout(timer); ws.close(); resolve(JSON.parse(e.data)); };
  }), server2.url);
  assert.deepEqual(answer, { type: 'redirect', location: server.url });
  for (const m of members) await m.leave();
});

test('three members call through the second node', async () => {
  const members = await callThrough(server2, SERVER_ADDR_2, 'compose-2');
  for (const m of members) await m.leave();
});
