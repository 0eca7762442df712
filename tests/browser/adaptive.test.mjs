// Acceptance (issue "Adaptive forwarding under E2EE"): each subscriber receives the
// simulcast layers its own link carries, in a plain channel and in an E2EE one. Three 720p
// simulcast publishers (plain: sora-js-sdk 2026.1.0 with `simulcast: true`; E2EE: the
// shipped client, client/hisoka.js, with e2ee and simulcast, whose SFrame leaves the
// server nothing of the media to read) and an unlimited subscriber run in Chromium next to
// hisoka; a second subscriber runs in its own network namespace behind a veth pair whose
// server side has a `tbf` rate limit. hisoka estimates each subscriber's downlink from its
// transport-cc feedback, splits it across the subscriber's tracks and probes with RTX
// padding when the tracks want more.
//
// Asserted over 30 s after a 10 s warm-up at 1 Mbit/s: the limited subscriber decodes every
// publisher at the lowest layer at 10 fps or more with under 1 s frozen per stream; the
// unlimited one decodes the top layer; no publisher encodes more than 2 key frames on any
// layer. Then 1 -> 5 -> 1 Mbit/s: the limited subscriber moves up within 10 s and back
// down within 3 s, with no freeze over 1 s. Widths are compared with what each publisher
// itself encodes for each rid, so the test checks which layer is forwarded, not what
// this machine manages to encode.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchChromium, waitFor } from '../lib/browser.mjs';
import { recvStats, sendStats } from '../lib/video-stats.mjs';
import { createNetns } from '../lib/netns.mjs';
import { ROOT, startServer } from '../lib/server.mjs';

const SDK_SOURCE = fs.readFileSync(path.join(ROOT, 'tests/node_modules/sora-js-sdk/dist/sora.js'));
const SERVER_IP = '10.201.0.1';
const SUBSCRIBER_IP = '10.201.0.2';
const VETH = `hkb${process.pid % 100000}`; // the server side (root namespace)
const VETH_PEER = `${VETH}p`;
const CHANNEL = 'adaptive';
const WARMUP_MS = 10000;
const WINDOW_MS = 30000;

let server;
let ns;
let near; // Chromium next to hisoka: publishers and the unlimited subscriber
let far; // Chromium in the namespace: the limited subscriber

function setLimit(mbit) {
  // With HISOKA_BWE_TRACE (the server records its estimates' inputs), the change on the
  // same clock (CLOCK_MONOTONIC, as uv_hrtime) for tools/bwe-fixture.mjs.
  if (process.env.HISOKA_BWE_TRACE) console.log(`# bwe-mark ${process.hrtime.bigint() / 1000n} ${mbit * 1000}`);
  execFileSync('tc', ['qdisc', 'replace', 'dev', VETH, 'root', 'tbf', 'rate', `${Math.round(mbit * 1000)}kbit`,
    'burst', '16kb', 'latency', '250ms']);
}

const CLIENT_DIR = path.join(ROOT, 'client');
const TYPES = { '.js': 'application/javascript', '.html': 'text/html', '.css': 'text/css', '.wasm': 'application/wasm' };

before(() => {
  ns = createNetns('hkbwe');
  execFileSync('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', VETH_PEER]);
  execFileSync('ip', ['link', 'set', VETH_PEER, 'netns', ns.name]);
  execFileSync('ip', ['addr', 'add', `${SERVER_IP}/24`, 'dev', VETH]);
  execFileSync('ip', ['link', 'set', VETH, 'up']);
  execFileSync('ip', ['-n', ns.name, 'addr', 'add', `${SUBSCRIBER_IP}/24`, 'dev', VETH_PEER]);
  execFileSync('ip', ['-n', ns.name, 'link', 'set', VETH_PEER, 'up']);
});

after(() => {
  try { execFileSync('ip', ['link', 'del', VETH]); } catch { /* gone with the namespace */ }
  ns?.destroy();
});

// hisoka (plain or E2EE) and the two browsers for one scenario.
async function start(e2ee, mbit = 1) {
  setLimit(mbit);
  // Everyone reaches hisoka at the veth address: from the root namespace that is a local
  // address (no limit), from the namespace it goes through the limited veth.
  server = await startServer({ listen_address: SERVER_IP, public_ipv4_address: SERVER_IP, log_level: 'info',
    ...(e2ee ? { e2ee: true } : {}) });
  // Pages are served at hisoka's veth address, which Chromium treats as insecure (no
  // getUserMedia) and as a local network its Local Network Access checks block
  // (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS on the WebSocket) unless told otherwise.
  const args = [`--unsafely-treat-insecure-origin-as-secure=${origin()}`,
    '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets,LocalNetworkAccessChecksWebRTC'];
  near = await launchChromium({ args });
  far = await launchChromium({ executablePath: ns.chromium, args });
}

async function stop() {
  if (process.env.HISOKA_TEST_LOG) fs.writeFileSync(process.env.HISOKA_TEST_LOG, server?.log ?? '');
  await near?.close();
  await far?.close();
  await server?.stop();
  near = far = server = null;
}

const origin = () => `http://${SERVER_IP}:${server.config.signaling_port}`;
const signalingUrl = () => `ws://${SERVER_IP}:${server.config.signaling_port}/signaling`;

// One client in its own page, served by playwright at hisoka's address: sora-js-sdk
// (plain), or the shipped client from client/ (e2ee). Either way the page keeps
// window.sdkTest = {conn: {pc}, remote: {connectionId: {tracks}}}.
async function openClient(browser, e2ee, label, role, simulcast, media = null, svc = null) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`${label} page error:`, e.message));
  await page.route(`${origin()}/adaptive`, (route) => route.fulfill({
    status: 200, contentType: 'text/html', body: '<!doctype html><title>adaptive</title>',
  }));
  await page.route(`${origin()}/sdk/sora.js`, (route) => route.fulfill({
    status: 200, contentType: 'application/javascript', body: SDK_SOURCE,
  }));
  await page.route(`${origin()}/demo/**`, (route) => {
    const rel = new URL(route.request().url()).pathname.slice('/demo/'.length);
    const file = path.join(CLIENT_DIR, path.normalize(rel));
    if (!file.startsWith(CLIENT_DIR) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: '' });
    return route.fulfill({ status: 200, contentType: TYPES[path.extname(file)] ?? 'application/octet-stream',
      body: fs.readFileSync(file) });
  });
  await page.goto(`${origin()}/adaptive`);
  const result = await page.evaluate(async ({ e2ee, base, url, channelId, role, simulcast, media, svc }) => {
    const t = { remote: {} };
    window.sdkTest = t;
    const addTrack = (connectionId, track) => {
      const r = t.remote[connectionId] || (t.remote[connectionId] = { tracks: [] });
      r.tracks.push(track);
    };
    const stream = media ? await navigator.mediaDevices.getUserMedia(media) : null;
    let pc;
    try {
      if (e2ee) {
        const { HisokaClient } = await import(`${base}/demo/hisoka.js`);
        const client = new HisokaClient(url, { channelId, role, e2ee: true, simulcast,
          ...(svc ? { videoCodecType: svc.codec } : {}) });
        client.addEventListener('track', (e) => addTrack(e.detail.connectionId, e.detail.track));
        t.client = client;
        const id = await client.connect(stream);
        pc = client.pc;
        t.conn = { pc, connectionId: id };
      } else {
        const { default: Sora } = await import(`${base}/sdk/sora.js`);
        const conn = Sora.connection(url)[role](channelId, null, { audio: false, video: true, simulcast });
        conn.on('track', (event) => { if (event.streams[0]) addTrack(event.streams[0].id, event.track); });
        await conn.connect(stream);
        pc = conn.pc;
        t.conn = { pc, connectionId: conn.connectionId };
      }
    } catch (e) {
      return { error: `${e.name}: ${e.message}` };
    }
    if (stream) {
      // Keep the resolution under CPU load (2 cores): Chromium would otherwise scale the
      // camera down and the layers with it.
      for (const tr of pc.getTransceivers()) {
        if (tr.sender.track?.kind !== 'video') continue;
        const params = tr.sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        await tr.sender.setParameters(params).catch(() => {});
      }
    }
    if (stream && svc) {
      // One encoding with spatial and temporal layers (SVC in one SSRC).
      for (const tr of pc.getTransceivers()) {
        if (tr.sender.track?.kind !== 'video') continue;
        const params = tr.sender.getParameters();
        params.encodings[0].scalabilityMode = svc.mode;
        try {
          await tr.sender.setParameters(params);
        } catch (e) {
          return { error: `scalabilityMode ${svc.mode}: ${e.message}` };
        }
      }
    }
    return { connectionId: t.conn.connectionId };
  }, { e2ee, base: origin(), url: signalingUrl(), channelId: CHANNEL, role, simulcast, media, svc });
  if (result.error) throw new Error(`${label}: connect failed: ${result.error}\n${server.log.slice(-3000)}`);
  return { label, page, id: result.connectionId };
}

async function serverView(client) {
  const r = await fetch(`${server.apiUrl}/stats/connections/${client.id}`);
  const s = await r.json();
  return {
    bwe: s.bwe,
    layers: Object.fromEntries((s.consumers || []).filter((c) => c.simulcast)
      .map((c) => [c.sender_connection_id, c.simulcast])),
  };
}

// The rid each sender's stream arrives at, by comparing widths with what the sender
// encodes per rid; null when none matches.
function ridsSeen(recv, sent) {
  const out = {};
  for (const [id, r] of Object.entries(recv)) {
    const perRid = sent[id] || {};
    out[id] = Object.keys(perRid).find((rid) => perRid[rid].frameWidth === r.frameWidth && r.frameWidth > 0) ?? null;
  }
  return out;
}

const MEDIA = { audio: false, video: { width: 1280, height: 720, frameRate: 30 } };

// Waits until each publisher encodes all three layers (Chromium enables a publisher's
// upper layers as its own estimate ramps up, and every layer it starts costs a key frame
// on all of them), then warms up.
async function layersUp(pubs, sentAll) {
  let prev = null;
  const up = await waitFor(async () => {
    const sent = await sentAll();
    const growing = prev && pubs.every((p) => ['r0', 'r1', 'r2'].every((rid) =>
      (sent[p.id][rid]?.framesEncoded ?? 0) > (prev[p.id][rid]?.framesEncoded ?? 0) && sent[p.id][rid].frameWidth > 0));
    prev = sent;
    return growing;
  }, 40000, 1000);
  assert.ok(up, `every publisher sends r0, r1 and r2: ${JSON.stringify(prev)}`);
  await new Promise((r) => setTimeout(r, WARMUP_MS));
}

// The scenario, in a plain or an E2EE channel.
async function scenario(e2ee) {
  const media = MEDIA;
  const pubs = [];
  for (const label of ['A', 'B', 'C']) pubs.push(await openClient(near, e2ee, label, 'sendonly', true, media));
  const unlimited = await openClient(near, e2ee, 'U', 'recvonly', true);
  const limited = await openClient(far, e2ee, 'L', 'recvonly', true);
  const sentAll = async () => Object.fromEntries(await Promise.all(pubs.map(async (p) => [p.id, await sendStats(p.page)])));
  const label = (id) => pubs.find((p) => p.id === id)?.label ?? id;
  const snapshot = async (what) => {
    const [sent, u, l, lv] = [await sentAll(), await recvStats(unlimited.page), await recvStats(limited.page), await serverView(limited)];
    console.log(`# ${what}: limited ${JSON.stringify(Object.fromEntries(Object.entries(l).map(([id, s]) => [label(id), s])))}`);
    console.log(`#   unlimited widths ${JSON.stringify(Object.fromEntries(Object.entries(u).map(([id, s]) => [label(id), s.frameWidth])))}`);
    console.log(`#   sender widths ${JSON.stringify(Object.fromEntries(Object.entries(sent).map(([id, s]) => [label(id), Object.fromEntries(Object.entries(s).map(([rid, x]) => [rid, [x.frameWidth, x.keyFramesEncoded, x.targetBitrate]]))])))}`);
    console.log(`#   server: bwe ${JSON.stringify(lv.bwe)} layers ${JSON.stringify(Object.fromEntries(Object.entries(lv.layers).map(([id, x]) => [label(id), x])))}`);
    return { sent, u, l, lv };
  };

  await layersUp(pubs, sentAll);
  const s0 = await snapshot('after warm-up');
  if (process.env.HISOKA_ADAPTIVE_TRACE) {
    let last = null;
    for (let i = 0; i < WINDOW_MS / 1000; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = { sent: await sentAll(), l: await recvStats(limited.page), u: await recvStats(unlimited.page) };
      if (last) {
        const line = pubs.map((p) => `${p.label}: enc ${['r0', 'r1', 'r2'].map((rid) => (now.sent[p.id][rid]?.framesEncoded ?? 0) - (last.sent[p.id][rid]?.framesEncoded ?? 0)).join('/')} ` +
          `L ${now.l[p.id].framesDecoded - last.l[p.id].framesDecoded} (rcv ${now.l[p.id].framesReceived - last.l[p.id].framesReceived}, drop ${now.l[p.id].framesDropped - last.l[p.id].framesDropped}, pkts ${now.l[p.id].packetsReceived - last.l[p.id].packetsReceived}, nack ${now.l[p.id].nackCount}, pli ${now.l[p.id].pliCount}, frz ${now.l[p.id].freezeCount}) ` +
          `U ${now.u[p.id].framesDecoded - last.u[p.id].framesDecoded}`).join(' | ');
        console.log(`# t=${i}: ${line}`);
      }
      last = now;
    }
  } else {
    await new Promise((r) => setTimeout(r, WINDOW_MS));
  }
  const s1 = await snapshot('after 30 s');

  const seconds = WINDOW_MS / 1000;
  for (const p of pubs) {
    const l0 = s0.l[p.id];
    const l1 = s1.l[p.id];
    assert.ok(l1, `limited subscriber receives ${p.label}`);
    const fps = (l1.framesDecoded - l0.framesDecoded) / seconds;
    const frozen = l1.totalFreezesDuration - l0.totalFreezesDuration;
    assert.equal(ridsSeen(s1.l, s1.sent)[p.id], 'r0', `limited subscriber gets ${p.label} at r0`);
    assert.ok(fps >= 10, `limited subscriber decodes ${p.label} at ${fps.toFixed(1)} fps`);
    assert.ok(frozen < 1, `limited subscriber: ${p.label} frozen ${frozen.toFixed(2)} s`);
    assert.equal(ridsSeen(s1.u, s1.sent)[p.id], 'r2', `unlimited subscriber gets ${p.label} at r2`);
    for (const rid of ['r0', 'r1', 'r2']) {
      const keys = (s1.sent[p.id][rid]?.keyFramesEncoded ?? 0) - (s0.sent[p.id][rid]?.keyFramesEncoded ?? 0);
      assert.ok(keys <= 2, `${p.label} encoded ${keys} key frames on ${rid} in the window`);
    }
  }

  // From here on, the longest freeze of each stream is watched: Chromium counts a freeze
  // when a frame comes late (freezeCount) and adds its length (totalFreezesDuration), so
  // samples 200 ms apart give each one's length (two in one interval count as one).
  const longest = {};
  const freezes = [];
  const watchStart = Date.now();
  const marks = [];
  let watching = true;
  const watcher = (async () => {
    let last = await recvStats(limited.page);
    let lastLayers = '';
    while (watching) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await recvStats(limited.page);
      if (process.env.HISOKA_ADAPTIVE_TRACE) {
        // The server's side of each change: estimate and current/target layer per sender.
        const v = await serverView(limited);
        const layers = pubs.map((p) => `${p.label} ${v.layers[p.id]?.current_rid}>${v.layers[p.id]?.target_rid}`).join(' ');
        if (layers !== lastLayers) {
          console.log(`# ${((Date.now() - watchStart) / 1000).toFixed(1)} s: ${layers}; estimate ${v.bwe?.estimate_bps}, ` +
            `allocated ${v.bwe?.allocated_bps}, usage ${v.bwe?.usage}, loss ${v.bwe?.loss_ratio}, ` +
            `widths ${pubs.map((p) => now[p.id]?.frameWidth).join('/')}, keys ${pubs.map((p) => now[p.id]?.keyFramesDecoded).join('/')}`);
          lastLayers = layers;
        }
      }
      for (const [id, st] of Object.entries(now)) {
        const before = last[id];
        if (before && st.freezeCount > before.freezeCount) {
          const d = st.totalFreezesDuration - before.totalFreezesDuration;
          longest[id] = Math.max(longest[id] ?? 0, d);
          freezes.push(`${label(id)} ${d.toFixed(2)} s ending ${((Date.now() - watchStart) / 1000).toFixed(1)} s ` +
            `(width ${st.frameWidth}, keys ${st.keyFramesDecoded}, plis ${st.pliCount}, nacks ${st.nackCount}, lost ${st.packetsLost})`);
        }
      }
      last = now;
    }
  })();

  // 1 -> 5 Mbit/s: some stream above r0 within 10 s.
  setLimit(5);
  const t0 = Date.now();
  marks.push(`5 Mbit/s at ${((t0 - watchStart) / 1000).toFixed(1)} s`);
  const up = await waitFor(async () => {
    const v = await serverView(limited);
    return Object.values(v.layers).some((x) => x.current_rid !== 'r0');
  }, 10000, 250);
  const upMs = Date.now() - t0;
  await snapshot(`5 Mbit/s after ${upMs} ms`);
  assert.ok(up, 'the limited subscriber moves up within 10 s of the limit rising');
  await new Promise((r) => setTimeout(r, 5000));
  await snapshot('5 Mbit/s, 5 s later');

  // 5 -> 1 Mbit/s: everyone back at r0 within 3 s.
  setLimit(1);
  const t1 = Date.now();
  marks.push(`1 Mbit/s at ${((t1 - watchStart) / 1000).toFixed(1)} s`);
  const down = await waitFor(async () => {
    const v = await serverView(limited);
    return Object.values(v.layers).every((x) => x.current_rid === 'r0');
  }, 3000, 100);
  const downMs = Date.now() - t1;
  await new Promise((r) => setTimeout(r, 5000));
  watching = false;
  await watcher;
  await snapshot(`1 Mbit/s again (down after ${downMs} ms)`);
  console.log(`# longest freeze per stream while the limit changed: ${JSON.stringify(Object.fromEntries(pubs.map((p) => [p.label, longest[p.id] ?? 0])))}; ` +
    `${marks.join(', ')}; freezes: ${freezes.join('; ') || 'none'}`);
  assert.ok(down, 'the limited subscriber moves down within 3 s of the limit falling');
  for (const p of pubs) {
    assert.ok((longest[p.id] ?? 0) <= 1, `${p.label}: a freeze of ${longest[p.id]?.toFixed(2)} s`);
  }
}

const TITLE = 'a subscriber behind 1 Mbit/s gets the lowest layers, an unlimited one the top; 1 -> 5 -> 1 Mbit/s';

test(`plain channel (sora-js-sdk): ${TITLE}`, async () => {
  await start(false);
  try {
    await scenario(false);
  } finally {
    await stop();
  }
});

test(`E2EE channel (client/hisoka.js, SFrame): ${TITLE}`, async () => {
  await start(true);
  try {
    await scenario(true);
  } finally {
    await stop();
  }
});

// Below the lowest layer: three publishers' r0 (about 150 kbit/s each in Chromium's
// L1T3) do not all fit 400 kbit/s. Instead of pausing a stream, hisoka leaves out temporal
// layers (frames a subscriber's decoder never needs to decode the rest): every stream
// keeps playing at r0, with fewer frames per second for some, and without freezes.
async function fewerFrames(e2ee) {
  const pubs = [];
  for (const label of ['A', 'B', 'C']) pubs.push(await openClient(near, e2ee, label, 'sendonly', true, MEDIA));
  const limited = await openClient(far, e2ee, 'L', 'recvonly', true);
  const sentAll = async () => Object.fromEntries(await Promise.all(pubs.map(async (p) => [p.id, await sendStats(p.page)])));
  await layersUp(pubs, sentAll);
  const metric = async () => {
    const text = await (await fetch(`${server.apiUrl}/metrics`)).text();
    return Number(/^hisoka_layer_dropped_total (\d+)/m.exec(text)?.[1] ?? NaN);
  };
  const [l0, d0] = [await recvStats(limited.page), await metric()];
  const seconds = 15;
  const caps = {};
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const v = await serverView(limited);
    for (const p of pubs) {
      const x = v.layers[p.id];
      const key = `${x?.current_rid}/${x?.current_temporal ?? 'all'}`;
      (caps[p.label] ??= {})[key] = (caps[p.label][key] ?? 0) + 1;
    }
  }
  const [l1, d1, sent, v] = [await recvStats(limited.page), await metric(), await sentAll(), await serverView(limited)];
  console.log(`# 400 kbit/s: layer/temporal cap seconds ${JSON.stringify(caps)}; temporal packets dropped ${d1 - d0}; ` +
    `estimate ${v.bwe?.estimate_bps}, allocated ${v.bwe?.allocated_bps}`);
  let dropping = 0;
  for (const p of pubs) {
    const fps = (l1[p.id].framesDecoded - l0[p.id].framesDecoded) / seconds;
    const encoded = (sent[p.id].r0?.framesEncoded ?? 0);
    const frozen = l1[p.id].totalFreezesDuration - l0[p.id].totalFreezesDuration;
    console.log(`#   ${p.label}: ${fps.toFixed(1)} fps decoded at width ${l1[p.id].frameWidth} (r0 encoded ${encoded} frames so far), ` +
      `frozen ${frozen.toFixed(2)} s, freezes ${l1[p.id].freezeCount - l0[p.id].freezeCount}`);
    assert.equal(l1[p.id].frameWidth, sent[p.id].r0?.frameWidth, `${p.label} arrives at r0`);
    assert.ok(fps >= 3, `${p.label} keeps playing: ${fps.toFixed(1)} fps`);
    assert.ok(frozen < 1, `${p.label} frozen ${frozen.toFixed(2)} s`);
    assert.ok(!caps[p.label]['none/all'] && !caps[p.label]['undefined/all'], `${p.label} never paused: ${JSON.stringify(caps[p.label])}`);
    dropping += Object.keys(caps[p.label]).filter((k) => !k.endsWith('/all')).length;
  }
  assert.ok(dropping > 0, 'some stream is forwarded without its upper temporal layers');
  assert.ok(d1 - d0 > 0, 'hisoka_layer_dropped_total grows');
}

const FEWER = 'a subscriber behind 400 kbit/s, less than three lowest layers, gets fewer frames of each rather than a pause';

test(`plain channel (sora-js-sdk): ${FEWER}`, async () => {
  await start(false, 0.4);
  try {
    await fewerFrames(false);
  } finally {
    await stop();
  }
});

test(`E2EE channel (client/hisoka.js, SFrame): ${FEWER}`, async () => {
  await start(true, 0.4);
  try {
    await fewerFrames(true);
  } finally {
    await stop();
  }
});

// SVC in one SSRC: a publisher sends VP9 with three spatial and three temporal layers
// (L3T3_KEY) in an E2EE channel, whose dependency descriptors tell hisoka each packet's
// layers; a subscriber behind 600 kbit/s gets the lower spatial layers (a smaller picture
// than the unlimited subscriber's), at a steady frame rate.
test('E2EE channel (client/hisoka.js, SFrame), VP9 L3T3_KEY in one SSRC: a subscriber behind 600 kbit/s gets the lower spatial layers', async () => {
  await start(true, 0.6);
  try {
    const pub = await openClient(near, true, 'A', 'sendonly', false, MEDIA, { codec: 'VP9', mode: 'L3T3_KEY' });
    const unlimited = await openClient(near, true, 'U', 'recvonly', false);
    const limited = await openClient(far, true, 'L', 'recvonly', false);
    // The publisher's encoder reaches its top spatial layer as its own estimate grows.
    const top = await waitFor(async () => (await sendStats(pub.page))['-']?.frameWidth === 1280 &&
      (await recvStats(unlimited.page))[pub.id]?.frameWidth === 1280, 40000, 1000);
    const sent = await sendStats(pub.page);
    assert.ok(top, `the publisher encodes 1280 wide and the unlimited subscriber decodes it: ${JSON.stringify(sent)}`);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const [l0, u0] = [await recvStats(limited.page), await recvStats(unlimited.page)];
    const seconds = 15;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const [l1, u1, v] = [await recvStats(limited.page), await recvStats(unlimited.page), await serverView(limited)];
    const consumer = await (async () => {
      const r = await fetch(`${server.apiUrl}/stats/connections/${limited.id}`);
      return ((await r.json()).consumers || []).find((c) => c.kind === 'video');
    })();
    const [l, u] = [l1[pub.id], u1[pub.id]];
    const fps = (l.framesDecoded - l0[pub.id].framesDecoded) / seconds;
    const ufps = (u.framesDecoded - u0[pub.id].framesDecoded) / seconds;
    const frozen = l.totalFreezesDuration - l0[pub.id].totalFreezesDuration;
    console.log(`# SVC: sent ${JSON.stringify(sent)}; limited ${l.frameWidth}x${l.frameHeight} at ${fps.toFixed(1)} fps, ` +
      `frozen ${frozen.toFixed(2)} s; unlimited ${u.frameWidth} at ${ufps.toFixed(1)} fps; server ${JSON.stringify(consumer?.svc)}, ` +
      `estimate ${v.bwe?.estimate_bps}, allocated ${v.bwe?.allocated_bps}`);
    assert.ok(consumer?.svc, 'hisoka sees the layers');
    assert.equal(u.frameWidth, 1280, 'the unlimited subscriber decodes the top spatial layer');
    assert.ok(l.frameWidth > 0 && l.frameWidth < 1280, `the limited subscriber decodes a lower spatial layer: ${l.frameWidth}`);
    assert.ok(fps >= 10, `the limited subscriber decodes ${fps.toFixed(1)} fps`);
    assert.ok(frozen < 1, `the limited subscriber froze ${frozen.toFixed(2)} s`);
  } finally {
    await stop();
  }
});
