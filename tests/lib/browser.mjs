// Headless Debian Chromium driven by playwright-core. A BrowserPeer is one page with one
// RTCPeerConnection that plays a Sora client's WebRTC side: it applies the server's
// offers and produces real Chromium answers.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

import { startServer } from './server.mjs';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
];

// options.executablePath: another launcher (e.g. one that enters a network namespace);
// options.args: more command-line switches; options.caCerts: PEM files of certificate
// authorities it trusts (an NSS database in its own HOME, made with certutil).
export async function launchChromium(options = {}) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-chromium-'));
  let env;
  if (options.caCerts?.length) {
    const nssdb = path.join(userDataDir, 'home', '.pki', 'nssdb');
    fs.mkdirSync(nssdb, { recursive: true });
    execFileSync('certutil', ['-N', '-d', `sql:${nssdb}`, '--empty-password']);
    options.caCerts.forEach((file, i) => execFileSync('certutil',
      ['-A', '-n', `hisoka-test-ca-${i}`, '-t', 'C,,', '-i', file, '-d', `sql:${nssdb}`]));
    env = { ...process.env, HOME: path.join(userDataDir, 'home') };
  }
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.executablePath || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.args || [])],
    ...(env ? { env } : {}),
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export class BrowserPeer {
  static async open(browser, origin) {
    const page = await browser.context.newPage();
    await page.goto(`${origin}/health`);
    await page.evaluate(() => {
      window.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      window.trackEvents = [];
      window.pc.ontrack = (e) => {
        window.trackEvents.push({ kind: e.track.kind, mid: e.transceiver.mid,
          streams: e.streams.map((s) => s.id), track: e.track });
      };
    });
    const peer = new BrowserPeer();
    peer.page = page;
    return peer;
  }

  // Applies an offer and returns Chromium's answer. With mids, the fake camera and
  // microphone are attached to those transceivers first, as Sora's JS SDK does.
  answer(sdp, mids = null) {
    return this.page.evaluate(async ({ sdp, mids }) => {
      await window.pc.setRemoteDescription({ type: 'offer', sdp });
      if (mids && !window.sending) {
        window.sending = true;
        const stream = await navigator.mediaDevices.getUserMedia({ audio: !!mids.audio, video: !!mids.video });
        for (const track of stream.getTracks()) {
          const mid = track.kind === 'audio' ? mids.audio : mids.video;
          const t = window.pc.getTransceivers().find((x) => x.mid === mid);
          if (!t) throw new Error(`no transceiver with mid ${mid}`);
          await t.sender.replaceTrack(track);
          t.direction = 'sendonly';
          t.sender.setStreams(stream);
        }
      }
      const answer = await window.pc.createAnswer();
      await window.pc.setLocalDescription(answer);
      return answer.sdp;
    }, { sdp, mids });
  }

  // Every ontrack so far: kind, mid, stream ids, and whether the track has ended.
  trackEvents() {
    return this.page.evaluate(() => window.trackEvents.map((e) => ({
      kind: e.kind, mid: e.mid, streams: e.streams, ended: e.track.readyState === 'ended',
    })));
  }

  transceivers() {
    return this.page.evaluate(() => window.pc.getTransceivers().map((t) => ({
      mid: t.mid, direction: t.direction, currentDirection: t.currentDirection, stopped: t.currentDirection === 'stopped',
    })));
  }

  async close() { await this.page.close(); }
}

// One browser member of a call: a page running tests/browser/sora-page.js, which does
// the whole Sora flow itself (signaling in the page, media from the fake devices).
export class CallMember {
  // constraints: getUserMedia constraints of the fake devices (default audio + video);
  // degradation: the video sender's degradationPreference (default: Chromium's).
  static async join(browser, server, connect, constraints = undefined, degradation = null) {
    const page = await browser.context.newPage();
    await page.goto(`${server.apiUrl}/health`);
    await page.addScriptTag({ path: new URL('../browser/sora-page.js', import.meta.url).pathname });
    const member = new CallMember();
    member.page = page;
    member.id = await page.evaluate(
      ({ url, connect, constraints, degradation }) =>
        window.hisokaTest.join(url, connect, constraints, degradation),
      { url: server.url, connect, constraints, degradation });
    if (!member.id) throw new Error('no offer received');
    return member;
  }

  stats() { return this.page.evaluate(() => window.hisokaTest.stats()); }

  // The server's /stats, fetched from inside the page (works across namespaces).
  serverStats() {
    return this.page.evaluate(async () => (await fetch('/stats')).json());
  }

  async leave() {
    await this.page.evaluate(() => window.hisokaTest.leave());
    await this.page.close();
  }
}

// Polls fn() until it returns a truthy value or timeout_ms passes; returns the last value.
export async function waitFor(fn, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let value;
  for (;;) {
    value = await fn();
    if (value || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// For a test file: starts a server (with config overrides) and a browser before its
// tests, hands both to set(server, browser), and stops them after.
export function serverAndBrowser(overrides, set) {
  let server;
  let browser;
  before(async () => {
    server = await startServer(overrides);
    browser = await launchChromium();
    set(server, browser);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
}
