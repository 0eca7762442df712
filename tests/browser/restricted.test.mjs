// Connectivity for restricted networks (issue 16), Chromium and Firefox in one call:
// each test makes a network namespace, runs hisoka (and coturn) and both browsers in
// it, and restricts the browsers' traffic with nftables:
//   - nothing blocked: UDP is selected (the browsers' getStats and hisoka's stats);
//   - UDP blocked entirely: both join over ICE-TCP and decode each other within 5 s;
//     the same with 5% loss on the TCP path (nftables numgen random), no freeze > 2 s;
//   - only TCP 443 to coturn: both join through TURN over TLS, relayed by a real coturn
//     started here, and decode each other within 5 s;
//   - a TCP subscriber whose path stops taking data (nftables drops what hisoka sends
//     it) is cut off once its send queue stays full, while the others keep decoding.
//   - the unmodified sora-js-sdk takes the offer's iceServers: two SDK clients meet
//     through coturn over TLS with nothing configured on their side.
// Everything runs on the namespace's own loopback: hisoka on 127.0.0.1, coturn on
// 127.0.0.3 (listening and relaying), so the rules can tell coturn's relayed traffic
// from the browsers' own. The page and signaling (TCP to the API and signaling ports)
// stay allowed, as they would be for a web page.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { waitFor } from '../lib/browser.mjs';
import { startCoturn } from '../lib/coturn.mjs';
import { HisokaMember, decodesAtSize, launchBrowser } from '../lib/firefox.js';
import { createNetns } from '../lib/netns.mjs';
import { ROOT, freePort, startServer } from '../lib/server.mjs';

const JOIN_DECODE_MS = 5000;
const TURN_SECRET = 'hisoka-coturn-test-secret';
const COTURN_IP = '127.0.0.3';
const COTURN_NAME = 'turn.hisoka.test';


const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// The selected candidate pair as the browser sees it.
function selectedPath(member) {
  return member.page.evaluate(async () => {
    const report = await window.hisokaMember.client.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pair = null;
    for (const s of byId.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    }
    if (!pair) {
      pair = [...byId.values()].find((s) => s.type === 'candidate-pair' && s.state === 'succeeded'
        && (s.selected || s.nominated)) || null;
    }
    if (!pair) return null;
    const local = byId.get(pair.localCandidateId) || {};
    const remote = byId.get(pair.remoteCandidateId) || {};
    return {
      localType: local.candidateType, localProtocol: local.protocol, relayProtocol: local.relayProtocol,
      remoteProtocol: remote.protocol, remotePort: remote.port,
    };
  });
}

// What ICE did, for failure messages: states, local candidates and pairs.
function iceState(member) {
  return member.page.evaluate(async () => {
    const { pc } = window.hisokaMember.client;
    const out = { ice: pc.iceConnectionState, gathering: pc.iceGatheringState, local: [], pairs: [] };
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'local-candidate') {
        out.local.push(`${s.candidateType}/${s.protocol}/${s.relayProtocol || ''}/${s.address}:${s.port}`);
      }
      if (s.type === 'candidate-pair') out.pairs.push(s.state);
    });
    return out;
  });
}

// GET on hisoka's API inside the namespace.
function api(ns, server, urlPath) {
  return execFileSync('ip', ['netns', 'exec', ns.name, 'curl', '-s', `${server.apiUrl}${urlPath}`]).toString();
}

function metric(text, name, labels = '') {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

// One call: a Chromium and a Firefox member, each sending; resolves when each decodes
// the other at its size, and says how long that took from the moment both had joined
// (their connects answered: ICE, DTLS and the first frames come after), and from the
// start of the first join (page loads too, which a busy machine slows most).
async function call(ns, server, channel, options = {}) {
  const browsers = {
    chromium: await launchBrowser('chromium', { netns: ns, ...options.chromium }),
    firefox: await launchBrowser('firefox', { netns: ns, ...options.firefox }),
  };
  const members = [];
  const startedAt = Date.now();
  const close = async () => {
    for (const m of members) await m.leave().catch(() => {});
    for (const b of Object.values(browsers)) await b.close().catch(() => {});
  };
  try {
    for (const name of ['chromium', 'firefox']) {
      members.push(await HisokaMember.join(browsers[name], server, channel, { e2ee: false, label: name }));
    }
  } catch (e) {
    await close();
    throw e;
  }
  const joinedAt = Date.now(); // both connects answered: the members have joined
  let views = [];
  const decodingAll = async () => {
    views = await Promise.all(members.map((m) => m.stats()));
    return members.every((m, i) => members.every((o, j) => i === j
      || decodesAtSize(views[i], o.id, views[j].sent)));
  };
  const decoding = await waitFor(decodingAll, 20000, 100);
  return {
    members, browsers, close, views: () => views,
    decodeMs: decoding ? Date.now() - joinedAt : null, // from joined to decoding both ways
    sinceStartMs: decoding ? Date.now() - startedAt : null, // with page loads and connects
  };
}

// Samples framesDecoded of every receiver/sender pair for ms; returns the longest time
// any pair went without a new decoded frame.
async function longestFreeze(members, ms) {
  const last = new Map();
  let worst = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const views = await Promise.all(members.map((m) => m.stats()));
    const now = Date.now();
    members.forEach((m, i) => members.forEach((o) => {
      if (o === m) return;
      const key = `${m.id}<-${o.id}`;
      const frames = views[i].remote[o.id]?.framesDecoded || 0;
      const prev = last.get(key);
      if (!prev || frames > prev.frames) {
        if (prev) worst = Math.max(worst, now - prev.at);
        last.set(key, { frames, at: now });
      } else {
        worst = Math.max(worst, now - prev.at);
      }
    }));
    await sleep(100);
  }
  return worst;
}

async function withNamespace(prefix, fn) {
  const ns = createNetns(prefix);
  let server;
  let coturn;
  try {
    const media_tcp_port = await freePort();
    const needTurn = prefix.startsWith('hkturn');
    if (needTurn) {
      // Firefox takes turns: only with a host name, which it resolves only when the
      // namespace has a non-loopback IPv4 address (AI_ADDRCONFIG).
      ns.hosts({ [COTURN_NAME]: COTURN_IP });
      ns.addAddress('10.255.0.1');
      coturn = await startCoturn(ns, { ip: COTURN_IP, name: COTURN_NAME, secret: TURN_SECRET });
    }
    server = await startServer({
      log_level: 'info', media_tcp_port,
      ...(needTurn ? { turn_urls: `turns:${COTURN_NAME}:443?transport=tcp`, turn_secret: TURN_SECRET } : {}),
    }, { wrap: ns.wrap });
    await fn({ ns, server, coturn });
  } catch (e) {
    if (server) e.message += `\n--- hisoka log tail:\n${server.log.split('\n').slice(-30).join('\n')}`;
    if (coturn) e.message += `\n--- coturn log tail:\n${coturn.log.split('\n').slice(-30).join('\n')}`;
    throw e;
  } finally {
    await server?.stop();
    await coturn?.stop();
    ns.destroy();
  }
}

// Drops every UDP packet in the namespace.
function blockUdp({ ns }) {
  ns.nft(`table inet restrict {
    chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }
  }`);
}

// A namespace (withNamespace), its restrictions, then a call in it (call) for fn.
async function inCall(prefix, { restrict = () => {}, browsers = () => ({}) }, fn) {
  await withNamespace(prefix, async (env) => {
    restrict(env);
    const c = await call(env.ns, env.server, prefix, browsers(env));
    try {
      await fn({ ...env, c });
    } finally {
      await c.close();
    }
  });
}

// Only TCP 443 to coturn (and the page and signaling): every UDP packet of the browsers,
// ICE-TCP and the other ways to coturn are dropped; coturn's own traffic (its relay to
// hisoka) and hisoka's answers to the relay pass.
function onlyTls443ToCoturn({ ns, server }) {
  ns.nft(`table inet restrict {
    chain out {
      type filter hook output priority 0; policy accept;
      ip saddr ${COTURN_IP} accept
      ip daddr ${COTURN_IP} tcp dport 443 accept
      ip daddr ${COTURN_IP} udp sport ${server.config.media_port} accept
      ip daddr ${COTURN_IP} counter drop
      meta l4proto udp counter drop
      tcp dport ${server.config.media_tcp_port} counter drop
    }
  }`);
}

// Both browsers check coturn's certificate against the test CA that signed it.
const trustCoturn = ({ coturn }) => ({ chromium: { caCerts: [coturn.ca] }, firefox: { caCerts: [coturn.ca] } });

test('nothing blocked: Chromium and Firefox select UDP (getStats and hisoka /stats)', async () => {
  await inCall('hkopen', {}, async ({ ns, server, c }) => {
    assert.ok(c.decodeMs !== null, `they decode each other: ${JSON.stringify(c.views())}`);
    for (const m of c.members) {
      const p = await selectedPath(m);
      assert.equal(p?.localProtocol, 'udp', `${m.label}: ${JSON.stringify(p)}`);
      assert.equal(p.localType, 'host');
      const detail = JSON.parse(api(ns, server, `/stats/connections/${m.id}`));
      assert.equal(detail.ice.selected.path, 'udp');
    }
    const metrics = api(ns, server, '/metrics');
    assert.equal(metric(metrics, 'hisoka_media_paths', 'path="udp"'), 2);
    assert.equal(metric(metrics, 'hisoka_media_paths', 'path="tcp"'), 0);
  });
});

test('UDP blocked: both join over ICE-TCP and decode within 5 s; with 5% loss on TCP no freeze > 2 s', async () => {
  await inCall('hktcp', { restrict: blockUdp }, async ({ ns, server, c }) => {
    assert.ok(c.decodeMs !== null && c.decodeMs <= JOIN_DECODE_MS,
      `decoded within ${JOIN_DECODE_MS} ms of joining (took ${c.decodeMs}): ${JSON.stringify(c.views())}`);
    for (const m of c.members) {
      const p = await selectedPath(m);
      assert.equal(p?.remoteProtocol, 'tcp', `${m.label}: ${JSON.stringify(p)}`);
      const detail = JSON.parse(api(ns, server, `/stats/connections/${m.id}`));
      assert.equal(detail.ice.selected.path, 'tcp');
    }
    const tcpPort = server.config.media_tcp_port;
    ns.nft(`table inet loss {
      chain out {
        type filter hook output priority 0; policy accept;
        tcp sport ${tcpPort} numgen random mod 100 < 5 counter drop
        tcp dport ${tcpPort} numgen random mod 100 < 5 counter drop
      }
    }`);
    const freeze = await longestFreeze(c.members, 15000);
    const listing = execFileSync('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'inet', 'loss']).toString();
    const dropped = [...listing.matchAll(/counter packets (\d+)/g)].reduce((n, x) => n + Number(x[1]), 0);
    assert.ok(dropped > 20, `the loss rule dropped packets (${dropped})`);
    assert.ok(freeze <= 2000, `longest freeze under 5% TCP loss: ${freeze} ms`);
    const metrics = api(ns, server, '/metrics');
    assert.equal(metric(metrics, 'hisoka_media_paths', 'path="tcp"'), 2);
    console.log(`ICE-TCP: decoded ${c.decodeMs} ms after joining (${c.sinceStartMs} ms after the first page load); 5% loss: ${dropped} segments dropped, longest freeze ${freeze} ms`);
  });
});

test('only TCP 443 to coturn: both join through TURN over TLS (real coturn) and decode within 5 s', async () => {
  await inCall('hkturn', { restrict: onlyTls443ToCoturn, browsers: trustCoturn }, async ({ ns, server, c }) => {
    assert.ok(c.decodeMs !== null && c.decodeMs <= JOIN_DECODE_MS,
      `decoded within ${JOIN_DECODE_MS} ms of joining (took ${c.decodeMs}): ${JSON.stringify(c.views())}`
      + ` ICE: ${JSON.stringify(await Promise.all(c.members.map(iceState)))}`);
    for (const m of c.members) {
      const p = await selectedPath(m);
      assert.equal(p?.localType, 'relay', `${m.label}: ${JSON.stringify(p)}`);
      assert.equal(p.relayProtocol, 'tls', `${m.label}: ${JSON.stringify(p)}`);
      const detail = JSON.parse(api(ns, server, `/stats/connections/${m.id}`));
      assert.equal(detail.ice.selected.path, 'relayed');
      assert.equal(detail.ice.selected.address, COTURN_IP);
    }
    const metrics = api(ns, server, '/metrics');
    assert.equal(metric(metrics, 'hisoka_media_paths', 'path="relayed"'), 2);
    console.log(`TURN/TLS: decoded ${c.decodeMs} ms after joining (${c.sinceStartMs} ms after the first page load)`);
  });
});

test('a TCP subscriber that stops taking data is cut off at its queue limit; the others keep decoding', async () => {
  await inCall('hkstall', { restrict: blockUdp }, async ({ ns, server, c }) => {
    const browser = await launchBrowser('chromium', { netns: ns });
    try {
      assert.ok(c.decodeMs !== null, `they decode each other: ${JSON.stringify(c.views())}`);
      // A third member, receive-only, over TCP too: the one that stalls.
      const stalled = await HisokaMember.join(browser, server, 'hkstall', { e2ee: false, role: 'recvonly', label: 'stalled' });
      assert.ok(await waitFor(async () => {
        const s = await stalled.stats();
        return c.members.every((m) => (s.remote[m.id]?.framesDecoded || 0) > 5);
      }, 10000, 200), 'the third member decodes');
      const detail = JSON.parse(api(ns, server, `/stats/connections/${stalled.id}`));
      assert.equal(detail.ice.selected.protocol, 'tcp');
      const peerPort = detail.ice.selected.port;
      // Everything hisoka sends to that connection is lost from now on (no ACKs come
      // back either): its socket buffer, then its send queue fill up.
      ns.nft(`table inet stall {
        chain out {
          type filter hook output priority 0; policy accept;
          tcp sport ${server.config.media_tcp_port} tcp dport ${peerPort} counter drop
        }
      }`);
      const stalledAt = Date.now();
      const freeze = longestFreeze(c.members, 12000);
      let cutAfter = null;
      await waitFor(() => {
        const m = api(ns, server, '/metrics');
        if (metric(m, 'hisoka_tcp_connections_closed_total', 'reason="stalled"') >= 1) {
          cutAfter = Date.now() - stalledAt;
          return true;
        }
        return false;
      }, 30000, 250);
      const m = api(ns, server, '/metrics');
      assert.ok(cutAfter !== null, `cut off: ${m.split('\n').filter((l) => l.startsWith('hisoka_tcp')).join('\n')}`);
      assert.ok(metric(m, 'hisoka_tcp_frames_dropped_total') > 0, 'it lost its own packets first');
      const worst = await freeze;
      assert.ok(worst <= 2000, `the others decode on (longest freeze ${worst} ms)`);
      console.log(`stalled reader cut off after ${cutAfter} ms; dropped ${metric(m, 'hisoka_tcp_frames_dropped_total')} frames; others' longest freeze ${worst} ms`);
      await stalled.leave();
    } finally {
      await browser.close().catch(() => {});
    }
  });
});

// The unmodified sora-js-sdk (as npm ships it) takes the offer's config.iceServers into
// its RTCPeerConnection: two SDK clients in Chromium meet through coturn over TLS with
// nothing configured on their side.
const SDK_DIR = path.join(ROOT, 'tests/node_modules/sora-js-sdk');
const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version;
const SDK_SOURCE = fs.readFileSync(path.join(SDK_DIR, 'dist/sora.js'));

async function sdkClient(browser, server, channelId) {
  const page = await browser.newPage();
  const sdkUrl = `${server.apiUrl}/sdk/sora.js`;
  await page.route(sdkUrl, (route) => route.fulfill({
    status: 200, contentType: 'application/javascript', body: SDK_SOURCE,
  }));
  await page.goto(`${server.apiUrl}/health`);
  await page.evaluate(async ({ sdkUrl, signalingUrl, channelId }) => {
    const { default: Sora } = await import(sdkUrl);
    const conn = Sora.connection(signalingUrl).sendrecv(channelId, null, { audio: true, video: true });
    window.sdkConn = conn;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    await conn.connect(stream);
  }, { sdkUrl, signalingUrl: server.url, channelId });
  return page;
}

function sdkView(page) {
  return page.evaluate(async () => {
    const { pc } = window.sdkConn;
    const out = { framesDecoded: 0, localType: null, relayProtocol: null, iceServers: pc.getConfiguration().iceServers };
    const byId = new Map();
    (await pc.getStats()).forEach((s) => byId.set(s.id, s));
    for (const s of byId.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded += s.framesDecoded || 0;
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const local = byId.get(byId.get(s.selectedCandidatePairId)?.localCandidateId) || {};
        out.localType = local.candidateType;
        out.relayProtocol = local.relayProtocol;
      }
    }
    return out;
  });
}

test(`sora-js-sdk ${SDK_VERSION} unmodified, only TCP 443 to coturn: it uses the offer's iceServers (TURN/TLS)`, async () => {
  await withNamespace('hkturnsdk', async (env) => {
    onlyTls443ToCoturn(env);
    const browser = await launchBrowser('chromium', { netns: env.ns, ...trustCoturn(env).chromium });
    try {
      const pages = [await sdkClient(browser, env.server, 'sdk'), await sdkClient(browser, env.server, 'sdk')];
      let views = [];
      const ok = await waitFor(async () => {
        views = await Promise.all(pages.map(sdkView));
        return views.every((v) => v.framesDecoded > 10 && v.localType === 'relay');
      }, 20000, 200);
      assert.ok(ok, `both decode through the relay: ${JSON.stringify(views)}`);
      for (const v of views) {
        assert.equal(v.relayProtocol, 'tls');
        assert.equal(v.iceServers.length, 1);
        assert.deepEqual(v.iceServers[0].urls, [`turns:${COTURN_NAME}:443?transport=tcp`]);
      }
      const metrics = api(env.ns, env.server, '/metrics');
      assert.equal(metric(metrics, 'hisoka_media_paths', 'path="relayed"'), 2);
    } finally {
      await browser.close();
    }
  });
});
