// Acceptance: Sora-compatible simulcast (PROTOCOL.md §5) with the unmodified sora-js-sdk
// 2026.1.0 in Chromium. Two sendonly publishers with `simulcast: true` get Sora's offer
// (encodings r0/r1/r2, a=rid/a=simulcast:recv) and send three layers; a receiver that
// asked for r0 decodes both at 320 px; the HTTP API (RequestSimulcastRid, and the legacy
// RequestRtpStream/ResetRtpStream) moves it between layers per sender, with a
// `simulcast.switched` notify each time and the layer in /stats/connections/<id>; a
// receiver without simulcast_rid gets the top layer.
//
// Widths are compared with what the publisher itself reports encoding for that rid
// (outbound-rtp frameWidth), so the test checks which layer is forwarded, not what the
// machine managed to encode; the publishers' nominal 320/640/1280 is asserted once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { serverAndBrowser, waitFor } from '../lib/browser.mjs';
import { sections } from '../lib/sdp.mjs';
import { ROOT } from '../lib/server.mjs';
import { recvStats, sendStats } from '../lib/video-stats.mjs';

const SDK_DIR = path.join(ROOT, 'tests/node_modules/sora-js-sdk');
const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version;
const SDK_SOURCE = fs.readFileSync(path.join(SDK_DIR, 'dist/sora.js'));

const CHANNEL = 'simulcast';
const RIDS = ['r0', 'r1', 'r2'];
const NOMINAL_WIDTH = { r0: 320, r1: 640, r2: 1280 };
const ENCODINGS = [
  { rid: 'r0', active: true, scaleResolutionDownBy: 4 },
  { rid: 'r1', active: true, scaleResolutionDownBy: 2 },
  { rid: 'r2', active: true, scaleResolutionDownBy: 1 },
];
// Chromium enables the upper layers only once its bandwidth estimate has ramped up.
const RAMP_MS = 25000;
const SWITCH_MS = 15000;

let server;
let browser;
serverAndBrowser({ log_level: 'info' }, (s, b) => { server = s; browser = b; });

const clients = [];

// One page on the server's origin with the SDK served at /sdk/sora.js by playwright;
// connects one SDK client of `role` with `options` (and, with `media`, getUserMedia(media)
// as its stream) and records what the SDK saw: the offer and the connect it sent
// ('signaling' events), notifies, remote tracks by stream id (= sender connection_id).
async function sdkClient(label, role, options, media = null) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`${label} page error:`, e.message));
  const sdkUrl = `${server.apiUrl}/sdk/sora.js`;
  await page.route(sdkUrl, (route) => route.fulfill({
    status: 200, contentType: 'application/javascript', body: SDK_SOURCE,
  }));
  await page.goto(`${server.apiUrl}/health`);
  const result = await page.evaluate(async ({ sdkUrl, signalingUrl, channelId, role, options, media }) => {
    const { default: Sora } = await import(sdkUrl);
    const t = { offer: null, connect: null, notify: [], remote: {}, timeline: [], disconnect: null };
    window.sdkTest = t;
    const conn = Sora.connection(signalingUrl)[role](channelId, null, options);
    t.conn = conn;
    conn.on('signaling', (event) => {
      if (event.type === 'onmessage-offer') t.offer = event.data;
      else if (event.type === 'send-connect') t.connect = { ...event.data, sdp: undefined };
    });
    conn.on('track', (event) => {
      const stream = event.streams[0];
      if (!stream) return;
      const r = t.remote[stream.id] || (t.remote[stream.id] = { tracks: [] });
      r.tracks.push(event.track);
    });
    conn.on('notify', (msg) => t.notify.push(msg));
    conn.on('disconnect', (event) => {
      t.disconnect = { type: event.type, title: event.title, code: event.code, reason: event.reason };
    });
    conn.on('timeline', (event) => {
      if (event.logType === 'websocket' && /^onclose|exception|failed/.test(event.type)) {
        t.timeline.push(`${event.type} ${JSON.stringify(event.data)}`);
      }
    });
    const stream = media ? await navigator.mediaDevices.getUserMedia(media) : null;
    try {
      await conn.connect(stream);
    } catch (e) {
      return { error: `${e.name}: ${e.message}`, timeline: t.timeline };
    }
    if (stream) {
      // Keep the resolution under CPU load (2 cores): Chromium would otherwise scale the
      // camera down and the layers with it. The SDK's encodings stay as it set them.
      for (const tr of conn.pc.getTransceivers()) {
        if (tr.sender.track?.kind !== 'video') continue;
        const params = tr.sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        await tr.sender.setParameters(params).catch(() => {});
      }
    }
    return { connectionId: conn.connectionId };
  }, { sdkUrl, signalingUrl: server.url, channelId: CHANNEL, role, options, media });
  if (result.error) {
    throw new Error(`${label}: SDK connect failed: ${result.error} ${JSON.stringify(result.timeline)}\n` +
      `server log:\n${server.log.slice(-3000)}`);
  }
  const client = { label, page, id: result.connectionId };
  clients.push(client);
  return client;
}

function pageState(client) {
  return client.page.evaluate(() => {
    const t = window.sdkTest;
    return { offer: t.offer, connect: t.connect, notify: t.notify, timeline: t.timeline, disconnect: t.disconnect };
  });
}

async function switchedNotifies(client) {
  return (await pageState(client)).notify.filter((n) => n.event_type === 'simulcast.switched');
}

// Publishers: every rid present and its framesEncoded growing between two samples 1 s
// apart. Returns the last stats.
async function waitThreeLayers(pub) {
  let prev = null;
  let last = null;
  const ok = await waitFor(async () => {
    last = await sendStats(pub.page);
    const growing = prev && RIDS.every((r) => last[r] && prev[r] && last[r].framesEncoded > prev[r].framesEncoded);
    prev = last;
    return growing;
  }, RAMP_MS, 1000);
  return { ok, last };
}

// The receiver decodes each sender in `want` ({senderId: rid}) at the width that sender
// encodes that rid at, with framesDecoded growing between two consecutive matching
// samples.
async function waitLayers(receiver, pubs, want, timeoutMs = SWITCH_MS) {
  let prev = null;
  let last = null;
  const ok = await waitFor(async () => {
    const recv = await recvStats(receiver.page);
    const sent = {};
    for (const p of pubs) if (want[p.id]) sent[p.id] = await sendStats(p.page);
    last = { recv, sent };
    const matches = Object.entries(want).every(([id, rid]) =>
      recv[id] && !recv[id].ended && recv[id].frameWidth > 0 &&
      recv[id].frameWidth === sent[id][rid]?.frameWidth);
    const growing = matches && prev && Object.keys(want).every((id) =>
      recv[id].framesDecoded > prev[id].framesDecoded);
    prev = matches ? recv : null;
    return growing;
  }, timeoutMs, 500);
  return { ok, last };
}

function describeWant(pubs, want) {
  return Object.entries(want).map(([id, rid]) => `${pubs.find((p) => p.id === id)?.label ?? id}=${rid}`).join(' ');
}

async function expectLayers(receiver, pubs, want, what) {
  const { ok, last } = await waitLayers(receiver, pubs, want);
  const summary = Object.fromEntries(Object.entries(last.recv).map(([id, r]) => [
    pubs.find((p) => p.id === id)?.label ?? id,
    { ...r, senderWidths: Object.fromEntries(RIDS.map((rid) => [rid, last.sent[id]?.[rid]?.frameWidth])) },
  ]));
  assert.ok(ok, `${what}: ${receiver.label} decodes ${describeWant(pubs, want)}; got ${JSON.stringify(summary)}`);
}

// Waits for a simulcast.switched notify at `receiver` about `sender` that matches `fields`
// and that was not among the first `after` such notifies.
async function expectSwitched(receiver, sender, fields, after, what) {
  const found = await waitFor(async () => {
    const list = await switchedNotifies(receiver);
    return list.slice(after).find((n) => n.sender_connection_id === sender.id &&
      Object.entries(fields).every(([k, v]) => n[k] === v));
  }, SWITCH_MS);
  assert.ok(found, `${what}: ${receiver.label} got simulcast.switched for ${sender.label} with ` +
    `${JSON.stringify(fields)}; all: ${JSON.stringify(await switchedNotifies(receiver))}`);
  assert.equal(found.type, 'notify');
  assert.equal(found.channel_id, CHANNEL);
  return found;
}

async function soraApi(target, body) {
  const headers = { 'x-sora-target': target, 'content-type': 'application/json' };
  if (server.config.api_secret) headers.authorization = `Bearer ${server.config.api_secret}`;
  const r = await fetch(`${server.apiUrl}/`, {
    method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, text, json };
}

const requestRid = (body) => soraApi('Sora_20251210.RequestSimulcastRid', body);

async function expectApi(promise, status, what) {
  const r = await promise;
  assert.equal(r.status, status, `${what}: HTTP ${r.status} ${r.text}`);
  return r;
}

// The {request_rid, current_rid} the server reports for the video `receiver` gets from
// each sender: every object in /stats/connections/<receiver> with a `simulcast` member,
// matched to the sender by sender_connection_id (or similar) or by the receiver's mid.
async function serverLayers(receiver, pubs) {
  const r = await fetch(`${server.apiUrl}/stats/connections/${receiver.id}`);
  const stats = await r.json();
  const found = [];
  (function walk(x) {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      if (x.simulcast && typeof x.simulcast === 'object') found.push(x);
      Object.values(x).forEach(walk);
    }
  })(stats);
  const recv = await recvStats(receiver.page);
  const out = {};
  for (const p of pubs) {
    const mid = recv[p.id]?.mid;
    const entry = found.find((e) => [e.sender_connection_id, e.producer_connection_id, e.connection_id,
      e.send_connection_id].includes(p.id)) || found.find((e) => mid !== undefined && e.mid === mid);
    out[p.id] = entry ? { request_rid: entry.simulcast.request_rid, current_rid: entry.simulcast.current_rid } : null;
  }
  return { out, stats };
}

async function expectServerLayers(receiver, pubs, want, what) {
  let last;
  const ok = await waitFor(async () => {
    last = await serverLayers(receiver, pubs);
    return Object.entries(want).every(([id, w]) => last.out[id] &&
      last.out[id].request_rid === w.request_rid && last.out[id].current_rid === w.current_rid);
  }, 5000);
  assert.ok(ok, `${what}: /stats/connections/${receiver.label} simulcast ` +
    `${JSON.stringify(Object.fromEntries(Object.entries(want).map(([id, w]) => [pubs.find((p) => p.id === id).label, w])))}; ` +
    `got ${JSON.stringify(last.out)}; consumers: ${JSON.stringify(last.stats.consumers ?? last.stats)}`);
}

async function diagnostics() {
  const out = [];
  for (const c of clients) {
    try {
      const st = await pageState(c);
      out.push(`--- ${c.label} ${c.id}`);
      out.push(`notifies: ${JSON.stringify(st.notify.filter((n) => n.event_type !== 'connection.created' &&
        n.event_type !== 'connection.destroyed'))}`);
      out.push(`timeline: ${JSON.stringify(st.timeline)} disconnect: ${JSON.stringify(st.disconnect)}`);
      out.push(`send: ${JSON.stringify(await sendStats(c.page))}`);
      out.push(`recv: ${JSON.stringify(await recvStats(c.page))}`);
      const r = await fetch(`${server.apiUrl}/stats/connections/${c.id}`);
      out.push(`server: ${r.status} ${await r.text()}`);
    } catch (e) {
      out.push(`${c.label}: ${e.message}`);
    }
  }
  out.push(`--- server log (tail):\n${server.log.slice(-6000)}`);
  return out.join('\n');
}

test(`simulcast with sora-js-sdk ${SDK_VERSION}: three layers, per-receiver rid, API switches`, async () => {
  try {
    await run();
  } catch (e) {
    console.error(await diagnostics());
    throw e;
  }
});

async function run() {
  // --- Publishers: Sora's simulcast offer, three layers on the wire. ---
  const pubOptions = { audio: false, video: true, simulcast: true };
  const media = { audio: false, video: { width: 1280, height: 720 } };
  const a = await sdkClient('A', 'sendonly', pubOptions, media);
  const b = await sdkClient('B', 'sendonly', pubOptions, media);
  const pubs = [a, b];
  for (const p of pubs) {
    assert.match(p.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const { offer, connect } = await pageState(p);
    assert.equal(connect.simulcast, true, `${p.label} connect carries simulcast: true`);
    assert.ok(offer, `${p.label}: the SDK saw an offer`);
    assert.equal(offer.simulcast, true, `${p.label} offer.simulcast`);
    assert.equal(offer.simulcast_multicodec, false, `${p.label} offer.simulcast_multicodec`);
    assert.deepEqual(offer.encodings, ENCODINGS, `${p.label} offer.encodings`);
    const msections = sections(offer.sdp).media;
    const video = msections.find((l) => l[0].startsWith('m=video') && l.includes(`a=mid:${offer.mid?.video}`)) ||
      msections.find((l) => l[0].startsWith('m=video') && l.some((x) => x.startsWith('a=simulcast:')));
    assert.ok(video, `${p.label}: the offer has the publishing video m-section (mid ${offer.mid?.video}):\n${offer.sdp}`);
    for (const rid of RIDS) assert.ok(video.includes(`a=rid:${rid} recv`), `${p.label}: a=rid:${rid} recv\n${video.join('\n')}`);
    assert.ok(video.includes('a=simulcast:recv r0;r1;r2'), `${p.label}: a=simulcast:recv r0;r1;r2\n${video.join('\n')}`);
    assert.ok(video.some((l) => /^a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id$/.test(l)),
      `${p.label}: the rtp-stream-id extension\n${video.join('\n')}`);
  }
  const layers = await Promise.all(pubs.map(waitThreeLayers));
  for (const [i, p] of pubs.entries()) {
    const { ok, last } = layers[i];
    assert.ok(ok, `${p.label} sends r0, r1 and r2 with framesEncoded growing within ${RAMP_MS} ms: ${JSON.stringify(last)}`);
    for (const rid of RIDS) {
      assert.equal(last[rid].frameWidth, NOMINAL_WIDTH[rid], `${p.label} ${rid} width: ${JSON.stringify(last)}`);
    }
  }

  // --- Receiver 1 asks for r0 at connect. ---
  const r1 = await sdkClient('R1', 'recvonly', { audio: false, video: true, simulcast: true, simulcastRid: 'r0' });
  assert.equal((await pageState(r1)).connect.simulcast_rid, 'r0', 'the SDK sent simulcast_rid');
  await expectLayers(r1, pubs, { [a.id]: 'r0', [b.id]: 'r0' }, 'simulcast_rid r0 at connect');
  for (const p of pubs) {
    // The first layer a receiver gets from a sender is announced with previous_rid "none".
    await expectSwitched(r1, p, { current_rid: 'r0', previous_rid: 'none' }, 0, 'first layer');
  }
  await expectServerLayers(r1, pubs, {
    [a.id]: { request_rid: 'r0', current_rid: 'r0' }, [b.id]: { request_rid: 'r0', current_rid: 'r0' },
  }, 'after connect');

  // --- RequestSimulcastRid r2 for A only: A at 1280, B stays at 320. ---
  let seen = await switchedNotifies(r1);
  const seenB = seen.filter((n) => n.sender_connection_id === b.id).length;
  let body = { channel_id: CHANNEL, receiver_connection_id: r1.id, sender_connection_id: a.id, rid: 'r2' };
  let res = await expectApi(requestRid(body), 200, 'RequestSimulcastRid r2 for A');
  for (const [k, v] of Object.entries(body)) assert.equal(res.json?.[k], v, `response echoes ${k}: ${res.text}`);
  await expectLayers(r1, pubs, { [a.id]: 'r2', [b.id]: 'r0' }, 'RequestSimulcastRid r2 for A');
  // R1's downlink estimate may still be growing and cap it at r1 for a while: then A goes
  // r0 -> r1 (the request, trigger rpc) -> r2 (trigger auto, when the estimate allows).
  await expectSwitched(r1, a, { request_rid: 'r2', current_rid: 'r2' }, seen.length, 'A switched to r2');
  const firstA = (await switchedNotifies(r1)).slice(seen.length).find((n) => n.sender_connection_id === a.id);
  assert.equal(firstA.trigger, 'rpc', `the request's own switch says rpc: ${JSON.stringify(firstA)}`);
  assert.equal(firstA.previous_rid, 'r0', JSON.stringify(firstA));
  await expectServerLayers(r1, pubs, {
    [a.id]: { request_rid: 'r2', current_rid: 'r2' }, [b.id]: { request_rid: 'r0', current_rid: 'r0' },
  }, 'after r2 for A');
  assert.equal((await switchedNotifies(r1)).filter((n) => n.sender_connection_id === b.id).length, seenB,
    `no simulcast.switched for B, whose layer did not change: ${JSON.stringify(await switchedNotifies(r1))}`);

  // --- RequestSimulcastRid r1 for every sender: both at 640. ---
  seen = await switchedNotifies(r1);
  body = { channel_id: CHANNEL, receiver_connection_id: r1.id, rid: 'r1' };
  res = await expectApi(requestRid(body), 200, 'RequestSimulcastRid r1 for all senders');
  for (const [k, v] of Object.entries(body)) assert.equal(res.json?.[k], v, `response echoes ${k}: ${res.text}`);
  await expectLayers(r1, pubs, { [a.id]: 'r1', [b.id]: 'r1' }, 'RequestSimulcastRid r1 for all');
  await expectSwitched(r1, a, { trigger: 'rpc', request_rid: 'r1', current_rid: 'r1', previous_rid: 'r2' },
    seen.length, 'A switched to r1');
  await expectSwitched(r1, b, { trigger: 'rpc', request_rid: 'r1', current_rid: 'r1', previous_rid: 'r0' },
    seen.length, 'B switched to r1');

  // --- Legacy RequestRtpStream r0 for B: B back at 320, A stays at 640. ---
  seen = await switchedNotifies(r1);
  await expectApi(soraApi('Sora_20201005.RequestRtpStream',
    { channel_id: CHANNEL, recv_connection_id: r1.id, send_connection_id: b.id, rid: 'r0' }),
  200, 'legacy RequestRtpStream r0 for B');
  await expectLayers(r1, pubs, { [a.id]: 'r1', [b.id]: 'r0' }, 'RequestRtpStream r0 for B');
  await expectSwitched(r1, b, { current_rid: 'r0', previous_rid: 'r1' }, seen.length, 'B switched to r0');

  // --- Legacy ResetRtpStream for A: back to the connect's choice, r0. ---
  seen = await switchedNotifies(r1);
  await expectApi(soraApi('Sora_20201005.ResetRtpStream',
    { channel_id: CHANNEL, recv_connection_id: r1.id, send_connection_id: a.id }),
  200, 'legacy ResetRtpStream for A');
  await expectLayers(r1, pubs, { [a.id]: 'r0', [b.id]: 'r0' }, 'ResetRtpStream for A');
  await expectSwitched(r1, a, { current_rid: 'r0', previous_rid: 'r1' }, seen.length, 'A reset to r0');
  await expectServerLayers(r1, pubs, {
    [a.id]: { request_rid: 'r0', current_rid: 'r0' }, [b.id]: { request_rid: 'r0', current_rid: 'r0' },
  }, 'after the reset');

  // --- Errors. ---
  const good = { channel_id: CHANNEL, receiver_connection_id: r1.id, sender_connection_id: a.id };
  await expectApi(requestRid({ ...good, rid: 'r3' }), 400, 'rid r3');
  await expectApi(requestRid({ ...good, rid: 2 }), 400, 'rid not a string');
  await expectApi(requestRid({ ...good }), 400, 'no rid');
  await expectApi(requestRid('{"channel_id":'), 400, 'body not JSON');
  await expectApi(requestRid({ ...good, receiver_connection_id: undefined, rid: 'r1' }), 400, 'no receiver');
  await expectApi(requestRid({ ...good, receiver_connection_id: '0'.repeat(26), rid: 'r1' }), 404, 'unknown receiver');
  await expectApi(requestRid({ ...good, sender_connection_id: '1'.repeat(26), rid: 'r1' }), 404, 'unknown sender');
  await expectApi(requestRid({ ...good, channel_id: 'nowhere', rid: 'r1' }), 404, 'unknown channel');
  await expectApi(soraApi('Sora_20201005.RequestRtpStream',
    { channel_id: CHANNEL, recv_connection_id: '0'.repeat(26), rid: 'r1' }), 404, 'legacy: unknown receiver');
  await expectApi(soraApi('Sora_20201005.RequestRtpStream',
    { channel_id: CHANNEL, recv_connection_id: r1.id, rid: 'r9' }), 400, 'legacy: bad rid');
  // None of them changed anything.
  await expectLayers(r1, pubs, { [a.id]: 'r0', [b.id]: 'r0' }, 'after the refused requests');

  // --- Receiver 2: no simulcast options at all, gets the top layer of both. ---
  const r2 = await sdkClient('R2', 'recvonly', { audio: false, video: true });
  await expectLayers(r2, pubs, { [a.id]: 'r2', [b.id]: 'r2' }, 'no simulcast_rid: the top layer');
  await expectLayers(r1, pubs, { [a.id]: 'r0', [b.id]: 'r0' }, 'R1 unaffected by R2');
  await expectApi(requestRid({ channel_id: CHANNEL, receiver_connection_id: r2.id, rid: 'auto' }), 200, 'rid auto');

  // --- Everyone leaves normally. ---
  for (const c of [r2, r1, b, a]) {
    await c.page.evaluate(() => window.sdkTest.conn.disconnect());
    const st = await pageState(c);
    assert.equal(st.disconnect?.type, 'normal', `${c.label} disconnect: ${JSON.stringify(st.disconnect)}`);
    // The SDK's own disconnect ends with a normal close (1000 NO-ERROR); anything else is not.
    const abnormal = st.timeline.filter((l) => !l.startsWith('onclose {"code":1000,'));
    assert.deepEqual(abnormal, [], `${c.label}: no signaling exceptions or abnormal closes`);
  }
  assert.ok(await waitFor(async () =>
    (await (await fetch(`${server.apiUrl}/stats/connections`)).json()).length === 0, 5000),
  'every connection is gone');
  for (const c of clients.splice(0)) await c.page.close();

  assert.ok(server.alive(), 'hisoka is still running');
  const warnings = server.log.split('\n').filter((l) => /^\S+ warn /.test(l));
  if (warnings.length) console.log(`# server warnings:\n${warnings.map((l) => `#   ${l}`).join('\n')}`);
  assert.doesNotMatch(server.log, /^\S+ error /m, `server log:\n${server.log.slice(-6000)}`);
}
