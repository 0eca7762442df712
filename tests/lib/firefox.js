// Headless Debian Firefox ESR driven by puppeteer-core over WebDriver BiDi, with a
// fresh profile, fake camera and microphone, and ICE on loopback (PROTOCOL.md §8).
// launchFirefox() and launchBrowser('chromium' | 'firefox') return the same shape:
// {name, newPage(), close()}, whose pages both answer goto, evaluate(fn, arg),
// addScriptTag({path}) and close(), so one test drives either browser.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

import { launchChromium } from './browser.mjs';
import { freePort } from './server.mjs';

export const FIREFOX = '/usr/bin/firefox-esr';

export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // Without it Firefox gathers no loopback candidates.
  'media.navigator.permission.fake': true,
  'media.peerconnection.ice.loopback': true,
  // Remote audio plays (and its samples are counted) without a user gesture.
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
};

// Runs in the namespace for each connection to the forwarder: pipes stdio to the
// browser's WebDriver BiDi port there.
const PIPE_SCRIPT = `const s = require('node:net').connect(Number(process.env.HK_PORT), '127.0.0.1');
process.stdin.pipe(s); s.pipe(process.stdout);
s.on('error', () => process.exit(1)); s.on('close', () => process.exit(0));`;

// Puppeteer reaches Firefox over a WebSocket on 127.0.0.1:port (Firefox has no pipe
// transport). When Firefox runs in a network namespace, that port lives there: this
// listens on the same port here and carries each connection through a small process
// started inside the namespace.
async function forwardIntoNetns(netnsName, port) {
  const children = new Set();
  const server = net.createServer((socket) => {
    const child = spawn('ip', ['netns', 'exec', netnsName, process.execPath, '-e', PIPE_SCRIPT], {
      stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, HK_PORT: String(port) },
    });
    children.add(child);
    socket.pipe(child.stdin);
    child.stdout.pipe(socket);
    const end = () => { socket.destroy(); child.kill(); children.delete(child); };
    socket.on('error', end);
    socket.on('close', end);
    child.on('exit', end);
    child.stdin.on('error', () => {});
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    close() {
      for (const child of children) child.kill();
      server.close();
    },
  };
}

// options.netns: a namespace from tests/lib/netns.mjs to run Firefox in;
// options.prefs: more preferences; options.caCerts: PEM files of certificate
// authorities the profile trusts (certutil, Debian libnss3-tools), e.g. a test TURN
// server's.
export async function launchFirefox(options = {}) {
  let executablePath = FIREFOX;
  let debuggingPort = null;
  let forwarder = null;
  let dir = null;
  let profile = null;
  if (options.caCerts?.length) {
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-firefox-profile-'));
    execFileSync('certutil', ['-N', '-d', `sql:${profile}`, '--empty-password']);
    options.caCerts.forEach((file, i) => execFileSync('certutil',
      ['-A', '-n', `hisoka-test-ca-${i}`, '-t', 'C,,', '-i', file, '-d', `sql:${profile}`]));
  }
  if (options.netns) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-firefox-'));
    executablePath = path.join(dir, 'firefox');
    fs.writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${options.netns.name} ${FIREFOX} "$@"\n`);
    fs.chmodSync(executablePath, 0o755);
    debuggingPort = await freePort();
    forwarder = await forwardIntoNetns(options.netns.name, debuggingPort);
  }
  let browser;
  try {
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath,
      headless: true,
      debuggingPort,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...(options.prefs || {}) },
      ...(profile ? { userDataDir: profile } : {}),
      protocolTimeout: 60000,
      timeout: 60000,
    });
  } catch (e) {
    forwarder?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    name: 'firefox',
    browser,
    version: await browser.version(),
    newPage: () => browser.newPage(),
    async close() {
      try {
        await browser.close();
      } finally {
        forwarder?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
        if (profile) fs.rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

// Chromium (playwright-core, tests/lib/browser.mjs) behind the same interface.
// options.netns: run it in that namespace; options.args (Chromium) and options.prefs
// (Firefox): more switches and preferences; options.caCerts: CAs both trust.
export async function launchBrowser(name, options = {}) {
  if (name === 'firefox') return launchFirefox(options);
  const chromium = await launchChromium({
    ...(options.netns ? { executablePath: options.netns.chromium } : {}),
    args: options.args, caCerts: options.caCerts,
  });
  return {
    name: 'chromium',
    context: chromium.context,
    version: chromium.context.browser()?.version() ?? 'chromium',
    newPage: () => chromium.context.newPage(),
    close: () => chromium.close(),
  };
}

// One page running hisoka's own client (client/hisoka.js, served by hisoka at /demo/)
// in either browser, with the fake camera and microphone.
export class HisokaMember {
  // options: {e2ee (default true), role (default 'sendrecv'), label (for messages)}.
  static async join(browser, server, channel, options = {}) {
    const { e2ee = true, role = 'sendrecv' } = options;
    const page = await browser.newPage();
    await page.goto(`${server.apiUrl}/health`);
    const id = await page.evaluate(async ({ url, channel, e2ee, role }) => {
      const { HisokaClient } = await import('/demo/hisoka.js');
      // Firefox gathers loopback candidates only for a page that holds a capture, so a
      // recvonly member opens the fake devices too and sends nothing.
      const devices = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const stream = role === 'recvonly' ? null : devices;
      const client = new HisokaClient(url, { channelId: channel, e2ee, role });
      const m = { client, devices, trackOwner: {}, errors: [], closed: null };
      window.hisokaMember = m;
      client.addEventListener('track', (e) => {
        const { track, connectionId } = e.detail;
        m.trackOwner[track.id] = connectionId;
        // Chromium pulls remote audio (and counts its samples) only while it plays.
        const el = document.createElement(track.kind);
        el.srcObject = new MediaStream([track]);
        el.autoplay = true;
        el.muted = track.kind === 'video';
        document.body.appendChild(el);
        el.play().catch(() => {});
      });
      client.addEventListener('error', (e) => m.errors.push(e.detail.message));
      client.addEventListener('closed', (e) => { m.closed = e.detail; });
      m.id = await client.connect(stream);
      // Keep the sent resolution, so that "decoded at the sender's size" is stable
      // on a busy machine.
      for (const sender of client.pc.getSenders()) {
        if (!sender.track || sender.track.kind !== 'video') continue;
        try {
          const params = sender.getParameters();
          params.degradationPreference = 'maintain-resolution';
          await sender.setParameters(params);
        } catch { /* not supported: the size is compared as it is */ }
      }
      return m.id;
    }, { url: server.url, channel, e2ee, role });
    const member = new HisokaMember();
    member.page = page;
    member.id = id;
    member.browser = browser.name;
    member.label = options.label || `${browser.name} ${id}`;
    return member;
  }

  // {connectionId, port (local UDP port of the selected candidate pair), encrypted
  // (frames the E2EE worker encrypted), sent: {width, height, framesEncoded}, remote: {[id]: {framesDecoded, frameWidth, frameHeight,
  // keyFramesDecoded, pliCount, packetsLost, audioSamples, concealedSamples,
  // decrypted, failed, missing}}, errors, closed}
  stats() {
    return this.page.evaluate(async () => {
      const m = window.hisokaMember;
      const report = await m.client.pc.getStats();
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      const e2ee = m.client.e2ee ? await m.client.e2ee.stats() : {};
      const out = {
        connectionId: m.id, port: null, sent: null, remote: {}, errors: m.errors, closed: m.closed,
        encrypted: e2ee.encrypted || 0,
      };
      for (const s of byId.values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.sent = { width: s.frameWidth || 0, height: s.frameHeight || 0, framesEncoded: s.framesEncoded || 0 };
        } else if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = byId.get(s.selectedCandidatePairId);
          const local = pair && byId.get(pair.localCandidateId);
          if (local) out.port = local.port;
        } else if (s.type === 'inbound-rtp') {
          const id = m.trackOwner[s.trackIdentifier];
          if (!id) continue;
          const r = out.remote[id] || (out.remote[id] = { ...(e2ee[id] || {}) });
          if (s.kind === 'video') {
            Object.assign(r, {
              framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
              keyFramesDecoded: s.keyFramesDecoded || 0, pliCount: s.pliCount || 0, packetsLost: s.packetsLost || 0,
            });
          } else {
            Object.assign(r, { audioSamples: s.totalSamplesReceived || 0, concealedSamples: s.concealedSamples || 0 });
          }
        }
      }
      return out;
    });
  }

  // {own: this member's safety number, seen: {[id]: the number it shows for id}}
  safety() {
    return this.page.evaluate(async () => {
      const { client } = window.hisokaMember;
      return {
        own: await client.safetyNumber(),
        seen: Object.fromEntries([...client.members].map(([id, x]) => [id, x.safetyNumber])),
      };
    });
  }

  async leave() {
    await this.page.evaluate(() => window.hisokaMember.client.disconnect()).catch(() => {});
    await this.page.close();
  }
}

// True when `stats` (a receiver's) shows video of `id` decoding at the size that
// sender sends, with more than `minFrames` frames and more than `after` (a previous
// framesDecoded, to see it increase).
export function decodesAtSize(stats, id, sent, { minFrames = 5, after = 0 } = {}) {
  const r = stats.remote[id];
  return !!(r && sent && r.framesDecoded >= minFrames && r.framesDecoded > after
    && r.frameWidth === sent.width && r.frameHeight === sent.height && sent.width > 0);
}
