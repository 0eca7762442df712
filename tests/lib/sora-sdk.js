// Shiguredo's own clients against hisoka: npm sora-js-sdk (2026.1.0, and the last two
// releases with E2EE, 2023.1.0 and 2020.6.2, installed as npm aliases), unmodified, in
// Debian's Chromium, with Sora's E2EE wasm from ../shared/sora-e2ee/ (next to the
// repository). See ../shared/sora-e2ee/README.md for the two page-side adjustments made
// here, which concern the SDKs in today's Chromium and not the server.
import fs from 'node:fs';
import path from 'node:path';

import { ROOT } from './server.mjs';

export const SHARED_E2EE_DIR = path.resolve(ROOT, '../shared/sora-e2ee');
export const E2EE_WASM = path.join(SHARED_E2EE_DIR, 'sora-e2ee-2020.2.1.wasm');

// undefined when the wasm is there; otherwise the reason the E2EE tests are skipped.
export function e2eeSkipReason() {
  if (fs.existsSync(E2EE_WASM)) return undefined;
  const missing = fs.existsSync(SHARED_E2EE_DIR) ? E2EE_WASM : SHARED_E2EE_DIR;
  return `skipped: ${missing} is absent (Sora's E2EE wasm, from ../shared/sora-e2ee/ next to ` +
    'the repository); these tests of Sora\'s E2EE clients did not run';
}

const SDK_DIRS = {
  '2026.1.0': 'sora-js-sdk',
  '2023.1.0': 'sora-js-sdk-2023.1.0',
  '2020.6.2': 'sora-js-sdk-2020.6.2',
};

const sources = new Map();
function sdkSource(version) {
  if (!sources.has(version)) {
    const dir = path.join(ROOT, 'tests/node_modules', SDK_DIRS[version]);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    if (pkg.version !== version) throw new Error(`${dir} holds sora-js-sdk ${pkg.version}, not ${version}`);
    // ESM builds: 2026.1.0 ships dist/sora.js, the older ones dist/sora.mjs.
    const file = fs.existsSync(path.join(dir, 'dist/sora.mjs')) ? 'dist/sora.mjs' : 'dist/sora.js';
    sources.set(version, fs.readFileSync(path.join(dir, file)));
  }
  return sources.get(version);
}

// Runs in every page before the SDK loads.
function pageSetup() {
  // 1. sora-js-sdk 2020.6.2 and 2023.1.0 encrypt only through createEncodedStreams; where
  // RTCRtpSender.prototype.transform exists they skip E2EE but still ask for insertable
  // streams, and no video flows.
  delete RTCRtpSender.prototype.transform;
  delete RTCRtpReceiver.prototype.transform;
  // 2. The wasm (Go 1.19) imports runtime.walltime; the SDKs' bundled Go loader provides
  // the same function under its older name, runtime.walltime1.
  const instantiateStreaming = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = (source, imports) => {
    const go = imports && imports.go;
    if (go && go['runtime.walltime1'] && !go['runtime.walltime']) go['runtime.walltime'] = go['runtime.walltime1'];
    return instantiateStreaming.call(WebAssembly, source, imports);
  };
  // What went over the signaling WebSocket, for the tests' diagnostics.
  const record = { received: [], sent: [], binaryIn: 0, binaryOut: 0, notify: [] };
  window.soraWire = record;
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string') {
          record.binaryIn++;
          return;
        }
        try {
          const msg = JSON.parse(e.data);
          record.received.push(msg.type);
          if (msg.type === 'notify') record.notify.push(msg);
        } catch { /* not JSON: the SDK will complain */ }
      });
    }

    send(data) {
      if (typeof data === 'string') {
        try { record.sent.push(JSON.parse(data).type); } catch { /* ignore */ }
      } else {
        record.binaryOut++;
      }
      return super.send(data);
    }
  };
}

// One SDK client in its own page. options: version ('2023.1.0', '2020.6.2' or
// '2026.1.0'), channelId, e2ee (bool), metadata (connect metadata, for the auth webhook),
// video ({width, height, frameRate} for the fake camera).
export class SoraSdkClient {
  static async open(browser, server, options) {
    const { version } = options;
    const page = await browser.context.newPage();
    const client = new SoraSdkClient();
    client.page = page;
    client.version = version;
    client.errors = [];
    page.on('pageerror', (e) => client.errors.push(e.message));
    const sdkUrl = `${server.apiUrl}/sdk/${version}/sora.mjs`;
    const wasmUrl = `${server.apiUrl}/sdk/sora-e2ee.wasm`;
    // Served by playwright itself: hisoka never sees these requests.
    await page.route(sdkUrl, (route) => route.fulfill({
      status: 200, contentType: 'application/javascript', body: sdkSource(version),
    }));
    await page.route(wasmUrl, (route) => route.fulfill({
      status: 200, contentType: 'application/wasm', body: fs.readFileSync(E2EE_WASM),
    }));
    await page.addInitScript(pageSetup);
    await page.goto(`${server.apiUrl}/health`);
    await page.evaluate(async ({ sdkUrl, wasmUrl, e2ee }) => {
      const { default: Sora } = await import(sdkUrl);
      window.Sora = Sora;
      if (e2ee) await Sora.initE2EE(wasmUrl);
    }, { sdkUrl, wasmUrl, e2ee: !!options.e2ee });
    client.options = options;
    client.signalingUrl = server.url;
    return client;
  }

  // Connects (sendrecv) and resolves once the SDK's connect() has. Sets this.id.
  async connect() {
    const { channelId, e2ee, metadata, video } = this.options;
    const result = await this.page.evaluate(async ({ url, channelId, e2ee, metadata, video }) => {
      const t = { remote: {}, disconnect: null };
      window.sdkTest = t;
      const options = { audio: true, video: true, multistream: true };
      if (e2ee) options.e2ee = true;
      const conn = window.Sora.connection(url).sendrecv(channelId, metadata ?? null, options);
      t.conn = conn;
      conn.on('track', (event) => {
        const stream = event.streams[0];
        if (!stream) return;
        const r = t.remote[stream.id] || (t.remote[stream.id] = { tracks: [] });
        r.tracks.push({ track: event.track, mid: event.transceiver ? event.transceiver.mid : null });
        if (event.track.kind === 'audio') {
          const audio = document.createElement('audio');
          audio.srcObject = new MediaStream([event.track]);
          audio.autoplay = true;
          document.body.appendChild(audio);
          audio.play().catch(() => {});
        }
      });
      conn.on('disconnect', (event) => {
        t.disconnect = { type: event.type, code: event.code, reason: event.reason };
      });
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
      try {
        await conn.connect(stream);
      } catch (e) {
        return { error: `${e.name}: ${e.message}` };
      }
      // Keep the sent resolution fixed on a busy machine: the test compares it with what
      // each receiver decodes.
      for (const sender of conn.pc.getSenders()) {
        if (!sender.track || sender.track.kind !== 'video') continue;
        const params = sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        await sender.setParameters(params).catch(() => {});
      }
      return { connectionId: conn.connectionId };
    }, { url: this.signalingUrl, channelId, e2ee: !!e2ee, metadata, video: video || true });
    if (result.error) throw new Error(`sora-js-sdk ${this.version} connect failed: ${result.error}`);
    this.id = result.connectionId;
    return this.id;
  }

  // What this client sends and decodes: {id, sent: {width, height, frames}, remote: {id:
  // {width, height, framesDecoded, ended}}, wire}.
  view() {
    return this.page.evaluate(async () => {
      const t = window.sdkTest;
      const pc = t.conn.pc;
      const report = pc ? await pc.getStats() : new Map();
      const inbound = {};
      const sent = { width: 0, height: 0, frames: 0 };
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') inbound[s.mid] = s;
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          sent.width = s.frameWidth || 0;
          sent.height = s.frameHeight || 0;
          sent.frames = s.framesEncoded || 0;
        }
      });
      const remote = {};
      for (const [id, r] of Object.entries(t.remote)) {
        const video = r.tracks.find((x) => x.track.kind === 'video');
        const s = (video && inbound[video.mid]) || {};
        remote[id] = {
          width: s.frameWidth || 0,
          height: s.frameHeight || 0,
          framesDecoded: s.framesDecoded || 0,
          ended: r.tracks.every((x) => x.track.readyState === 'ended'),
        };
      }
      const wire = window.soraWire;
      return {
        id: t.conn.connectionId,
        sent,
        remote,
        disconnect: t.disconnect,
        wire: { received: wire.received, sent: wire.sent, binaryIn: wire.binaryIn, binaryOut: wire.binaryOut },
      };
    });
  }

  // The notify messages this page received.
  notifies() {
    return this.page.evaluate(() => window.soraWire.notify);
  }

  async leave() {
    await this.page.evaluate(() => window.sdkTest.conn.disconnect()).catch(() => {});
    await this.page.close();
  }
}

// True when viewer decodes sender's video at the size sender encodes, not the SDK's
// 160x90 stand-in for frames it cannot decrypt.
export function decodesAt(viewerView, senderView) {
  const r = viewerView.remote[senderView.id];
  return !!r && r.framesDecoded > 0 && r.width > 0 &&
    r.width === senderView.sent.width && r.height === senderView.sent.height &&
    !(r.width === 160 && r.height === 90);
}
