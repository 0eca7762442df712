// Acceptance: the current sora-js-sdk from npm, unmodified, as hisoka's client. Two SDK
// clients in sendrecv see each other's remote stream (whose id is the other's
// connection_id), decode its video, and disconnect cleanly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { serverAndBrowser, waitFor } from '../lib/browser.mjs';
import { ROOT } from '../lib/server.mjs';

// The SDK's ESM build, exactly as npm ships it.
const SDK_DIR = path.join(ROOT, 'tests/node_modules/sora-js-sdk');
const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version;
const SDK_SOURCE = fs.readFileSync(path.join(SDK_DIR, 'dist/sora.js'));

let server;
let browser;
serverAndBrowser({ log_level: 'info' }, (s, b) => { server = s; browser = b; });

// Opens a page on the server's origin (a secure context) where the SDK module is served
// at /sdk/sora.js by playwright itself (hisoka never sees that request), connects one
// sendrecv client with the fake camera and microphone, and returns its page and id.
async function sdkClient(channelId) {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const sdkUrl = `${server.apiUrl}/sdk/sora.js`;
  await page.route(sdkUrl, (route) => route.fulfill({
    status: 200, contentType: 'application/javascript', body: SDK_SOURCE,
  }));
  await page.goto(`${server.apiUrl}/health`);
  const result = await page.evaluate(async ({ sdkUrl, signalingUrl, channelId }) => {
    const { default: Sora } = await import(sdkUrl);
    const t = { version: Sora.version(), remote: {}, notify: [], disconnect: null, timeline: [] };
    window.sdkTest = t;
    const conn = Sora.connection(signalingUrl).sendrecv(channelId, null, { audio: true, video: true });
    t.conn = conn;
    conn.on('track', (event) => {
      const stream = event.streams[0];
      const r = t.remote[stream.id] || (t.remote[stream.id] = { kinds: [], tracks: [] });
      r.kinds.push(event.track.kind);
      r.tracks.push(event.track);
      if (event.track.kind === 'audio') {
        // Chromium pulls remote audio (and counts its samples) only while it plays.
        const audio = document.createElement('audio');
        audio.srcObject = new MediaStream([event.track]);
        audio.autoplay = true;
        document.body.appendChild(audio);
        audio.play().catch(() => {});
      }
    });
    conn.on('connected', (msg) => { t.connected = msg.connection_id; });
    conn.on('notify', (msg) => t.notify.push(`${msg.event_type}:${msg.connection_id}`));
    conn.on('disconnect', (event) => {
      t.disconnect = { type: event.type, title: event.title, code: event.code, reason: event.reason };
    });
    conn.on('timeline', (event) => {
      if (event.logType === 'websocket' && /^onclose|exception|failed/.test(event.type)) {
        t.timeline.push(`${event.type} ${JSON.stringify(event.data)}`);
      }
    });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    try {
      await conn.connect(stream);
    } catch (e) {
      return { error: `${e.name}: ${e.message}`, timeline: t.timeline };
    }
    return { version: t.version, connectionId: conn.connectionId, clientId: conn.clientId };
  }, { sdkUrl, signalingUrl: server.url, channelId });
  if (result.error) {
    throw new Error(`SDK connect failed: ${result.error} ${JSON.stringify(result.timeline)}\n` +
      `server log:\n${server.log.slice(-3000)}`);
  }
  return { page, ...result };
}

// What one SDK client sees: per remote stream id, its kinds, track states, and the
// inbound video/audio stats of the transceivers that carry them.
function clientView(client) {
  return client.page.evaluate(async () => {
    const t = window.sdkTest;
    const pc = t.conn.pc;
    const report = pc ? await pc.getStats() : new Map();
    const byMid = {};
    const transceivers = pc ? pc.getTransceivers() : [];
    const midOfTrack = {};
    for (const tr of transceivers) if (tr.receiver.track) midOfTrack[tr.receiver.track.id] = tr.mid;
    report.forEach((s) => { if (s.type === 'inbound-rtp') byMid[s.mid] = s; });
    const remote = {};
    for (const [id, r] of Object.entries(t.remote)) {
      const entry = { kinds: r.kinds, framesDecoded: 0, totalSamplesReceived: 0, ended: true };
      for (const track of r.tracks) {
        const s = byMid[midOfTrack[track.id]] || {};
        if (track.kind === 'video') entry.framesDecoded = s.framesDecoded || 0;
        else entry.totalSamplesReceived = s.totalSamplesReceived || 0;
        if (track.readyState !== 'ended') entry.ended = false;
      }
      remote[id] = entry;
    }
    return {
      connectionId: t.conn.connectionId,
      remoteConnectionIds: [...t.conn.remoteConnectionIds],
      remote,
      notify: t.notify,
      disconnect: t.disconnect,
      timeline: t.timeline,
      connected: t.connected || null,
      connectionState: pc ? pc.connectionState : null,
    };
  });
}

test(`sora-js-sdk ${SDK_VERSION} unmodified: two sendrecv clients see each other`, async () => {
  const a = await sdkClient('sdk');
  const b = await sdkClient('sdk');
  assert.equal(a.version, SDK_VERSION);
  assert.match(a.connectionId, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'connection_id is 26 Crockford base32');
  assert.match(b.connectionId, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.notEqual(a.connectionId, b.connectionId);

  for (const [me, other] of [[a, b], [b, a]]) {
    // Each sees exactly one remote stream, the other's, with audio and video, and decodes
    // at least 30 frames of it within 10 s.
    const ok = await waitFor(async () => {
      const v = await clientView(me);
      const r = v.remote[other.connectionId];
      return r && r.framesDecoded >= 30 && r.totalSamplesReceived > 0 ? v : null;
    }, 10000);
    const view = ok || await clientView(me);
    if (process.env.SDK_TEST_DEBUG) console.log(JSON.stringify(view));
    assert.ok(ok, `${me.connectionId} decodes ${other.connectionId}: ${JSON.stringify(view)}`);
    assert.deepEqual(Object.keys(view.remote), [other.connectionId], 'the only remote stream is the other');
    assert.deepEqual([...view.remote[other.connectionId].kinds].sort(), ['audio', 'video']);
    assert.deepEqual(view.remoteConnectionIds, [other.connectionId]);
    assert.equal(view.connectionState, 'connected');
    // The SDK's `connected` callback fires only on the client's own connection.created.
    assert.equal(view.connected, me.connectionId, 'the SDK reported connected');
    assert.deepEqual(view.timeline, [], 'no signaling exceptions or closes in the SDK');
    assert.ok(view.notify.includes(`connection.created:${me.connectionId}`), 'own connection.created');
    if (me === a) {
      assert.ok(view.notify.includes(`connection.created:${b.connectionId}`), 'a is told b joined');
    }
  }

  // b leaves: a is notified and b's tracks end for it; then a leaves. Both disconnects
  // are normal (the server closes the WebSocket with 1000/1005 after `disconnect`).
  const bLeft = Date.now();
  await b.page.evaluate(() => window.sdkTest.conn.disconnect());
  const bView = await clientView(b);
  assert.equal(bView.disconnect?.type, 'normal', JSON.stringify(bView.disconnect));
  assert.ok([1000, 1005].includes(bView.disconnect.code), `close code ${bView.disconnect.code}`);
  assert.ok(Date.now() - bLeft < 2500, 'the server closed the WebSocket promptly after disconnect');
  const gone = await waitFor(async () => {
    const v = await clientView(a);
    return v.notify.includes(`connection.destroyed:${b.connectionId}`) && v.remote[b.connectionId].ended;
  }, 5000);
  assert.ok(gone, `a saw b leave: ${JSON.stringify(await clientView(a))}`);

  await a.page.evaluate(() => window.sdkTest.conn.disconnect());
  const aView = await clientView(a);
  assert.equal(aView.disconnect?.type, 'normal', JSON.stringify(aView.disconnect));
  assert.ok([1000, 1005].includes(aView.disconnect.code), `close code ${aView.disconnect.code}`);
  await a.page.close();
  await b.page.close();

  assert.ok(server.alive(), 'hisoka is still running');
  // No warnings or errors from hisoka (log lines are `<time> <level> [<module>] ...`).
  assert.doesNotMatch(server.log, /^\S+ (warn|error) /m, `server log:\n${server.log}`);
});
