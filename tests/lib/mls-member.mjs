import { waitFor } from './browser.mjs';

// One page running hisoka's client in an MLS channel (client/hisoka.js with
// e2eeProtocol 'mls', served by hisoka at /demo/), in Chromium or Firefox (the browser
// objects of tests/lib/firefox.js launchBrowser). The page records, with Date.now()
// times (the same clock as the test's on one machine):
//   rosters   every group update: {epoch, code, roster, added, removed, credentialChanged, banner, at}
//   notifies  the server's member-joined/member-left: {event, id, at}
//   firstAt   per sender and epoch (low 8 bits) the first time a frame of that epoch
//             decrypted, as the E2EE worker timed it: {'<id>:<epochBits>': at}, read
//             every 25 ms (the worker keeps the last 4 epochs per sender)
export class MlsPage {
  static async join(browser, server, channel, options = {}) {
    try {
      return await MlsPage.#join(browser, server, channel, options);
    } catch (e) {
      // Chromium aborts the requests in flight when the machine's network interfaces
      // change (net::ERR_NETWORK_CHANGED), as other test suites' containers and network
      // namespaces make them do: the page's import of the client failed before it
      // connected. Once more in a new page.
      if (!/Failed to fetch dynamically imported module/.test(String(e?.message))) throw e;
      console.log(`# ${browser.name}: the client's import failed (${e.message.split('\n')[0]}); once more in a new page`);
      return MlsPage.#join(browser, server, channel, options);
    }
  }

  static async #join(browser, server, channel, options) {
    // protocol: 'mls' (default) or null for round 1's scheme (join-latency comparisons).
    const { role = 'sendrecv', label, protocol = 'mls' } = options;
    const page = await browser.newPage();
    await page.goto(`${server.apiUrl}/health`);
    const t0 = Date.now();
    const id = await page.evaluate(async ({ url, channel, role, protocol }) => {
      // (A failed import throws before anything connected: join() may try again.)
      const { HisokaClient } = await import('/demo/hisoka.js');
      // Every signaling message in and out, with its time: {dir, type, at}.
      const trace = [];
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          this.addEventListener('message', (e) => trace.push({ dir: 'in', at: Date.now(),
            type: typeof e.data === 'string' ? JSON.parse(e.data).event_type || JSON.parse(e.data).type
              : `0x${new Uint8Array(e.data)[0].toString(16)}` }));
        }

        send(data) {
          trace.push({ dir: 'out', at: Date.now(), type: typeof data === 'string' ? JSON.parse(data).type
            : `0x${new Uint8Array(data.buffer ?? data)[data.byteOffset ?? 0].toString(16)}` });
          super.send(data);
        }
      };
      // 320x240 keeps five pages within a shared two-core machine.
      const devices = await navigator.mediaDevices.getUserMedia({ audio: true,
        video: { width: 320, height: 240, frameRate: 30 } });
      const stream = role === 'recvonly' ? null : devices;
      const client = new HisokaClient(url, { channelId: channel, e2ee: true, e2eeProtocol: protocol, role });
      const m = { client, devices, trackOwner: {}, errors: [], closed: null, rosters: [], notifies: [],
        firstAt: {}, firstDecrypt: {}, connectStart: Date.now(), trace };
      window.mlsMember = m;
      client.addEventListener('roster', (e) => {
        const u = e.detail;
        if (u.removed === true) { m.rosters.push({ removedSelf: true, at: Date.now() }); return; }
        m.rosters.push({ epoch: Number(u.epoch), code: u.code, roster: u.roster.map((r) => r.identity).sort(),
          added: u.added, removed: u.removed, credentialChanged: u.credentialChanged, banner: u.banner, at: Date.now() });
      });
      client.addEventListener('member-joined', (e) => m.notifies.push({ event: 'joined', id: e.detail.connectionId, at: Date.now() }));
      client.addEventListener('member-left', (e) => m.notifies.push({ event: 'left', id: e.detail.connectionId, at: Date.now() }));
      client.addEventListener('track', (e) => {
        const { track, connectionId } = e.detail;
        m.trackOwner[track.id] = connectionId;
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
      m.poll = setInterval(async () => {
        if (!client.e2ee) return;
        const s = await client.e2ee.stats();
        for (const [sender, v] of Object.entries(s)) {
          if (!v || typeof v !== 'object') continue;
          if (v.decrypted > 0 && !(sender in m.firstDecrypt)) m.firstDecrypt[sender] = Date.now();
          // The worker's time of each epoch's first decrypted frame (not this poll's).
          for (const [bits, at] of v.epochsAt || []) {
            const key = `${sender}:${bits}`;
            if (!(key in m.firstAt)) m.firstAt[key] = at;
          }
        }
      }, 25);
      return m.id;
    }, { url: server.url, channel, role, protocol }).catch(async (e) => {
      await page.close().catch(() => {});
      throw e;
    });
    const member = new MlsPage();
    member.page = page;
    member.id = id;
    member.t0 = t0;
    member.browser = browser.name;
    member.label = label || `${browser.name} ${id}`;
    return member;
  }

  // {id, epoch, code, roster (from the group), rosters, notifies, firstAt, e2ee (per
  // sender: decrypted, failed, missing, epochBits; encrypted, dropped, mls), remote
  // (per sender: framesDecoded, audioSamples), errors, closed}
  state() {
    return this.page.evaluate(async () => {
      const m = window.mlsMember;
      const e2ee = m.client.e2ee ? await m.client.e2ee.stats() : {};
      const report = await m.client.pc.getStats();
      const remote = {};
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const id = m.trackOwner[s.trackIdentifier];
        if (!id) return;
        const r = remote[id] || (remote[id] = {});
        if (s.kind === 'video') r.framesDecoded = s.framesDecoded || 0;
        else r.audioSamples = s.totalSamplesReceived || 0;
      });
      const mls = m.client.e2ee && m.client.e2ee.mls;
      return {
        id: m.id,
        epoch: mls && mls.epoch !== null ? Number(mls.epoch) : null,
        code: mls ? m.client.e2ee.verificationCode() : null,
        roster: mls ? m.client.e2ee.members().map((x) => x.connectionId).sort() : [],
        rosters: m.rosters, notifies: m.notifies, firstAt: m.firstAt, firstDecrypt: m.firstDecrypt,
        connectStart: m.connectStart, trace: m.trace,
        e2ee: JSON.parse(JSON.stringify(e2ee, (k, v) => (typeof v === 'bigint' ? Number(v) : v))),
        remote, errors: m.errors, closed: m.closed,
      };
    });
  }

  // The frames this page encrypts next (n of them), as sent: [{bytes, codec}].
  async captureSent(n) {
    await this.page.evaluate((count) => window.mlsMember.client.e2ee.debug.capture(count), n);
    let frames = [];
    await waitFor(async () => {
      frames = await this.page.evaluate(async () => (await window.mlsMember.client.e2ee.debug.captured())
        .map((f) => ({ bytes: [...f.bytes], codec: f.codec })));
      return frames.length >= n;
    }, 10000, 100);
    await this.page.evaluate(() => window.mlsMember.client.e2ee.debug.capture(0));
    return frames;
  }

  async leave() {
    await this.page.evaluate(() => { clearInterval(window.mlsMember.poll); window.mlsMember.client.disconnect(); }).catch(() => {});
    await this.page.close();
  }
}

// The p-th percentile (0..100) of numbers, nearest rank.
export function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}
