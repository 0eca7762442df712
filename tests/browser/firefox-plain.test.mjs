// Firefox ESR in a plain (not E2EE) channel: hisoka's own client in Firefox, and the
// current sora-js-sdk from npm, unmodified, in Firefox and in Chromium. All three
// decode each other's video at the sender's size and receive each other's audio.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { waitFor } from '../lib/browser.mjs';
import { HisokaMember, decodesAtSize, launchBrowser } from '../lib/firefox.js';
import { ROOT, startServer } from '../lib/server.mjs';

const SDK_DIR = path.join(ROOT, 'tests/node_modules/sora-js-sdk');
const SDK_VERSION = JSON.parse(fs.readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8')).version;
const SDK_SOURCE = fs.readFileSync(path.join(SDK_DIR, 'dist/sora.js'), 'utf8');

let server;
const browsers = {};
before(async () => {
  server = await startServer({ log_level: 'info' });
  browsers.firefox = await launchBrowser('firefox');
  browsers.chromium = await launchBrowser('chromium');
});
after(async () => {
  for (const b of Object.values(browsers)) await b?.close();
  await server?.stop();
});

// A sendrecv sora-js-sdk client in a page of the server's origin. The SDK's ESM build
// is handed to the page as text and imported from a blob: URL (the same way in both
// browsers, hisoka never serves it). The page state has the shape HisokaMember.stats()
// reads, so the same stats come back.
async function joinWithSdk(browser, channel, label) {
  const page = await browser.newPage();
  await page.goto(`${server.apiUrl}/health`);
  const result = await page.evaluate(async ({ source, url, channel }) => {
    const blobUrl = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const { default: Sora } = await import(blobUrl);
    const conn = Sora.connection(url).sendrecv(channel, null, { audio: true, video: true });
    const m = {
      trackOwner: {}, errors: [], closed: null,
      client: { get pc() { return conn.pc; }, e2ee: null, disconnect: () => conn.disconnect() },
    };
    window.hisokaMember = m;
    conn.on('track', (event) => {
      m.trackOwner[event.track.id] = event.streams[0].id;
      const el = document.createElement(event.track.kind);
      el.srcObject = new MediaStream([event.track]);
      el.autoplay = true;
      el.muted = event.track.kind === 'video';
      document.body.appendChild(el);
      el.play().catch(() => {});
    });
    conn.on('disconnect', (event) => { m.closed = { type: event.type, code: event.code }; });
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    try {
      await conn.connect(stream);
    } catch (e) {
      return { error: `${e.name}: ${e.message}` };
    }
    m.id = conn.connectionId;
    return { id: conn.connectionId, version: Sora.version() };
  }, { source: SDK_SOURCE, url: server.url, channel });
  if (result.error) throw new Error(`SDK connect failed in ${browser.name}: ${result.error}\n${server.log.slice(-2000)}`);
  assert.equal(result.version, SDK_VERSION);
  const member = new HisokaMember();
  Object.assign(member, { page, id: result.id, browser: browser.name, label });
  return member;
}

test(`plain channel: hisoka's client in Firefox, sora-js-sdk ${SDK_VERSION} in Firefox and Chromium`, async () => {
  const members = [
    await HisokaMember.join(browsers.firefox, server, 'plain', { e2ee: false, label: 'hisoka client in Firefox' }),
    await joinWithSdk(browsers.firefox, 'plain', `sora-js-sdk ${SDK_VERSION} in Firefox`),
    await joinWithSdk(browsers.chromium, 'plain', `sora-js-sdk ${SDK_VERSION} in Chromium`),
  ];
  const previous = {};
  let stats = {};
  const ok = await waitFor(async () => {
    const all = await Promise.all(members.map((m) => m.stats()));
    stats = Object.fromEntries(all.map((s) => [s.connectionId, s]));
    let done = true;
    for (const r of members) {
      for (const s of members) {
        if (r === s) continue;
        const key = `${r.id}<-${s.id}`;
        const remote = stats[r.id].remote[s.id];
        if (!decodesAtSize(stats[r.id], s.id, stats[s.id].sent, { minFrames: 30, after: previous[key] ?? Infinity })
          || !(remote.audioSamples > 0)) done = false;
        previous[key] = remote?.framesDecoded || 0;
      }
    }
    return done;
  }, 15000, 250);
  const view = JSON.stringify(Object.fromEntries(members.map((m) => [m.label,
    { id: m.id, sent: stats[m.id]?.sent, remote: stats[m.id]?.remote }])));
  assert.ok(ok, `every member decodes every other at the sender's size and hears it: ${view}`);
  for (const m of members) assert.deepEqual(stats[m.id].errors, [], `${m.label}: no client errors`);
  for (const m of members) await m.leave();
  assert.ok(server.alive(), 'hisoka is still running');
});
