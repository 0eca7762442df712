#!/usr/bin/env node
// Feeds the golden server offers (tests/unit/fixtures/sdp/offer-*.sdp, written by
// `HK_UPDATE_GOLDEN=1 build/unit-tests sdp_offer_golden`) to Debian's headless Chromium,
// checks that Chromium accepts each one (setRemoteDescription + createAnswer), and saves
// Chromium's answer next to it as answer-<case>.sdp.
//
// Like Sora's JS SDK, the page attaches its getUserMedia tracks to the transceivers of
// the offer's recvonly sections (the server's RECV mids) with sender.replaceTrack() and
// direction = 'sendonly' before answering.
//
// Usage (from the repository root, after `cd tests && npm ci`):
//   node tools/gen-sdp-fixtures.mjs                 # all golden offers, write answers
//   node tools/gen-sdp-fixtures.mjs --check FILE... # only check that Chromium accepts FILEs
// Exits 1 when Chromium refuses any offer.
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(root, 'tests', 'package.json'));
const { chromium } = require('playwright-core');
const fixtures = join(root, 'tests', 'unit', 'fixtures', 'sdp');

const argv = process.argv.slice(2);
const checkOnly = argv[0] === '--check';
const files = checkOnly
  ? argv.slice(1)
  : readdirSync(fixtures)
      .filter((f) => /^offer-.*\.sdp$/.test(f))
      .sort()
      .map((f) => join(fixtures, f));
if (files.length === 0) {
  console.error('no offers given or found in ' + fixtures);
  process.exit(2);
}

// getUserMedia needs a secure context: http://127.0.0.1 is one, about:blank is not.
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>hisoka sdp fixtures</title>');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const profile = mkdtempSync(join(tmpdir(), 'hk-sdp-chromium-'));
const args = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];
// Playwright refuses --user-data-dir in launch(): a persistent context is the same
// browser started with that fresh profile directory.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args,
});

let refused = 0;
try {
  const page = await context.newPage();
  await page.goto(url);
  for (const file of files) {
    const offer = readFileSync(file, 'utf8');
    const result = await page.evaluate(answerOffer, offer);
    const name = basename(file);
    if (!result.ok) {
      refused++;
      console.log(`REFUSED  ${name}: ${result.error}`);
      continue;
    }
    console.log(`accepted ${name} (answer: ${result.sdp.split('\r\n').length - 1} lines)`);
    if (!checkOnly) {
      const out = join(dirname(file), name.replace(/^offer-/, 'answer-'));
      writeFileSync(out, result.sdp);
      console.log(`         wrote ${out}`);
    }
  }
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${files.length - refused} accepted, ${refused} refused`);
process.exit(refused ? 1 : 0);

// Runs in the page.
async function answerOffer(sdp) {
  const pc = new RTCPeerConnection();
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // The server's RECV sections are its recvonly ones: the client sends there.
    const recvMid = {};
    for (const section of sdp.split(/\r\n(?=m=)/).slice(1)) {
      const kind = section.slice(2, section.indexOf(' '));
      const mid = /\r\na=mid:([^\r]+)/.exec(section);
      if (mid && /\r\na=recvonly\r\n/.test(section + '\r\n')) recvMid[kind] = mid[1];
    }
    if (Object.keys(recvMid).length > 0) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      for (const transceiver of pc.getTransceivers()) {
        for (const track of stream.getTracks()) {
          if (recvMid[track.kind] !== undefined && transceiver.mid === recvMid[track.kind]) {
            await transceiver.sender.replaceTrack(track);
            transceiver.direction = 'sendonly';
          }
        }
      }
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    return { ok: true, sdp: pc.localDescription.sdp };
  } catch (e) {
    return { ok: false, error: String(e) };
  } finally {
    pc.close();
  }
}
