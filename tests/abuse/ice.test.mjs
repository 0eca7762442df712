// ICE tuple hijack (docs/threats.md 17): a tuple belongs to exactly one connection, and a
// nominated tuple moves only once its consent has expired (RFC 7675).
//   - In Node: one socket sends checks with two connections' credentials; another
//     socket nominates itself while the first still has consent.
//   - In a network namespace with Chromium: spoofed checks (source rewritten by nftables)
//     with an attacker's valid credentials try to take a victim's tuple, and to send the
//     attacker's subscriptions to an address of its choosing. The victims keep decoding.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { afterEach, test } from 'node:test';

import { CallMember, launchChromium, waitFor } from '../lib/browser.mjs';
import { connectClient } from '../lib/client.mjs';
import { createNetns } from '../lib/netns.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { startServer } from '../lib/server.mjs';
import { bindingRequest, bindingSuccess, iceCredentials, isBindingSuccess } from '../lib/stun.mjs';

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// Whatever a test opened is closed after it, also when it fails (an open socket would keep
// the test process alive).
const opened = [];
afterEach(() => {
  for (const o of opened.splice(0)) {
    try { o.close(); } catch { /* already closed */ }
  }
});

async function join(server, channel) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel });
  opened.push(c);
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, creds: iceCredentials(offer.sdp), id: offer.connection_id };
}

function udpSocket() {
  const sock = dgram.createSocket('udp4');
  opened.push(sock);
  const received = [];
  sock.on('message', (m) => received.push(m));
  return new Promise((resolve) => sock.bind(0, '127.0.0.1', () =>
    resolve({ sock, received, port: sock.address().port })));
}

// Sends one binding request and says whether a success answer came back.
async function check(server, s, creds, useCandidate = true) {
  const before = s.received.filter(isBindingSuccess).length;
  await new Promise((r) => s.sock.send(bindingRequest({ ...creds, useCandidate }),
    server.config.media_port, '127.0.0.1', r));
  for (let i = 0; i < 20; i++) {
    if (s.received.filter(isBindingSuccess).length > before) return true;
    await pause(25);
  }
  return false;
}

async function ice(server, id) {
  return (await (await fetch(`${server.apiUrl}/stats/connections/${id}`)).json()).ice;
}

async function media(server) {
  return (await (await fetch(`${server.apiUrl}/stats`)).json()).media;
}

test('abuse 17: a check with another connection\'s credentials from a held tuple is refused', async () => {
  const server = await startServer();
  try {
    const x = await join(server, 'tuple');
    const y = await join(server, 'tuple');
    const s = await udpSocket();
    assert.ok(await check(server, s, x.creds), 'x validates its tuple');
    assert.equal((await ice(server, x.id)).selected.port, s.port);
    // The same tuple, y's valid credentials: no answer, nothing moves.
    assert.equal(await check(server, s, y.creds), false, 'no answer to the hijacking check');
    assert.equal(await check(server, s, y.creds, false), false, 'nor without USE-CANDIDATE');
    assert.ok((await media(server)).ice_tuple_conflicts >= 2, 'refusals counted');
    assert.equal((await ice(server, x.id)).selected.port, s.port, 'x keeps its tuple');
    assert.equal((await ice(server, y.id)).selected, null, 'y got nothing');
    assert.ok(await check(server, s, x.creds), 'x is still answered');
    // y from a tuple of its own is fine.
    const s2 = await udpSocket();
    assert.ok(await check(server, s2, y.creds), 'y from its own tuple');
    s.sock.close();
    s2.sock.close();
    x.client.close();
    y.client.close();
  } finally {
    await server.stop();
  }
});

// Binding requests the server sent to a socket (its own consent checks).
const requests = (s) => s.received.filter((m) => m.length >= 20 && m.readUInt16BE(0) === 0x0001);

test('abuse 17: a nominated tuple moves only after its consent expired, or when the new one answers the server\'s check', async () => {
  const server = await startServer({ consent_timeout: '3s' });
  try {
    const x = await join(server, 'move');
    const first = await udpSocket();
    const second = await udpSocket();
    assert.ok(await check(server, first, x.creds), 'first tuple nominated');
    const firstLastCheck = Date.now(); // the first tuple's consent runs from here
    // A nomination from another tuple of the same connection, while the first has consent:
    // validated and answered, but the media stays; the server asks that tuple for consent.
    assert.ok(await check(server, second, x.creds), 'the new tuple is validated');
    assert.equal((await ice(server, x.id)).selected.port, first.port, 'media stays on the first');
    assert.ok((await media(server)).ice_nominations_refused >= 1, 'refusal counted');
    assert.ok(await waitFor(() => requests(second).length >= 1, 2000), 'the server checks the new tuple');
    const probe = requests(second)[0];
    // Its check carries the client's ufrag first and is keyed with the client's password
    // (fakeAnswer: ufrag "test", pwd "testtesttesttesttesttest").
    assert.ok(probe.toString('latin1').includes(`test:${x.creds.serverUfrag}`), 'USERNAME client:server');
    // Unanswered, it is retransmitted at most 3 times in all, and nothing moves.
    await pause(2000);
    assert.ok(requests(second).length <= 3, `${requests(second).length} checks`);
    assert.equal((await ice(server, x.id)).selected.port, first.port, 'unanswered: media stays');
    // The first falls silent; the second keeps the connection alive and takes over once
    // the first tuple's consent (3 s) has expired.
    const moved = await waitFor(async () => {
      await check(server, second, x.creds);
      return (await ice(server, x.id))?.selected?.port === second.port;
    }, 8000, 250);
    const silent = Date.now() - firstLastCheck;
    assert.ok(moved, 'moved after the old tuple\'s consent expired');
    // Not before consent_timeout (3 s) of silence on the first tuple (less 100 ms for the
    // clocks of the test and the server).
    assert.ok(silent >= 2900, `moved ${silent} ms after the first tuple's last check`);
    first.sock.close();
    second.sock.close();

    // A third tuple that answers the server's check (with the client's password, as a
    // real client would) gets the media at once.
    const third = await udpSocket();
    third.sock.on('message', (m) => {
      if (m.length >= 20 && m.readUInt16BE(0) === 0x0001) {
        third.sock.send(bindingSuccess(m, 'testtesttesttesttesttest'), server.config.media_port, '127.0.0.1');
      }
    });
    const m0 = await media(server);
    assert.ok(await check(server, third, x.creds), 'third tuple validated');
    assert.ok(await waitFor(async () => (await ice(server, x.id)).selected.port === third.port, 2000),
      'moved as soon as the new tuple answered');
    assert.equal((await media(server)).ice_tuple_moves - m0.ice_tuple_moves, 1);
    // A forged answer (wrong password) from a fourth tuple moves nothing.
    const fourth = await udpSocket();
    fourth.sock.on('message', (m) => {
      if (m.length >= 20 && m.readUInt16BE(0) === 0x0001) {
        fourth.sock.send(bindingSuccess(m, 'not-the-client-password'), server.config.media_port, '127.0.0.1');
      }
    });
    await check(server, third, x.creds); // keep the third alive
    assert.ok(await check(server, fourth, x.creds));
    await pause(1500);
    assert.equal((await ice(server, x.id)).selected.port, third.port, 'a forged answer moves nothing');
    third.sock.close();
    fourth.sock.close();
    x.client.close();
  } finally {
    await server.stop();
  }
});

// Runs a sender inside the namespace: `count` binding requests (hex) from 127.0.0.1:from to
// the media port, then listens on `listen` for `listenMs` and prints the bytes received.
function nsUdp(ns, { from, to, messages, listen = 0, listenMs = 0 }) {
  const code = `
    import dgram from 'node:dgram';
    const [from, to, listen, listenMs, ...hex] = process.argv.slice(1);
    const out = dgram.createSocket('udp4');
    let bytes = 0;
    let nonStun = 0;
    const sink = dgram.createSocket('udp4');
    sink.on('message', (m) => { bytes += m.length; if (m[0] > 1) nonStun++; });
    await new Promise((r) => sink.bind(Number(listen), '127.0.0.1', r));
    await new Promise((r) => out.bind(Number(from), '127.0.0.1', r));
    for (const h of hex) {
      await new Promise((r) => out.send(Buffer.from(h, 'hex'), Number(to), '127.0.0.1', r));
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, Number(listenMs)));
    console.log(JSON.stringify({ bytes, nonStun }));
    process.exit(0);`;
  const args = ['--input-type=module', '-e', code, String(from), String(to), String(listen),
    String(listenMs), ...messages.map((m) => m.toString('hex'))];
  return new Promise((resolve, reject) => {
    const child = spawn(ns.wrap[0], [...ns.wrap.slice(1), process.execPath, ...args],
      { timeout: 30000 });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()))
      : reject(new Error(`ns sender failed: ${out}`))));
  });
}

// The credentials a page's connection uses: the server's (remote) and its own (local).
function pageCredentials(member) {
  return member.page.evaluate(() => {
    const pc = window.hisokaTest.state.pc;
    return {
      serverUfrag: /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription.sdp)[1],
      password: /a=ice-pwd:(\S+)/.exec(pc.remoteDescription.sdp)[1],
      clientUfrag: /a=ice-ufrag:(\S+)/.exec(pc.localDescription.sdp)[1],
    };
  });
}

async function decoded(member, from) {
  return (await member.stats()).remote[from]?.framesDecoded || 0;
}

test('abuse 17: spoofed checks with valid credentials steal no tuple and redirect no media (netns)', async () => {
  const ns = createNetns('hkice');
  let server;
  let browser;
  try {
    server = await startServer({ log_level: 'info' }, { wrap: ns.wrap });
    const port = server.config.media_port;
    browser = await launchChromium({ executablePath: ns.chromium });
    const a = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'hijack' });
    const b = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: 'hijack' });
    const c = await CallMember.join(browser, server, { role: 'recvonly', channel_id: 'hijack' });
    assert.ok(await waitFor(async () => (await decoded(b, a.id)) > 0 && (await decoded(c, a.id)) > 0,
      15000), 'b and c decode a');
    const conns = await b.serverStats();
    const victim = await b.page.evaluate(async (id) =>
      (await (await fetch(`/stats/connections/${id}`)).json()).ice.selected, b.id);
    const attacker = await pageCredentials(c);
    const m0 = (await b.serverStats()).media;

    // 1. c's valid credentials, b's address and port: the source is rewritten on the way
    // out of the namespace's sender socket (stateless, no conntrack).
    const spoofFrom = 47001;
    const sinkPort = 47002;
    ns.nft(`table ip spoof {
      chain raw { type filter hook output priority raw; policy accept; udp sport ${spoofFrom} notrack; }
      chain out { type filter hook output priority mangle; policy accept;
        udp sport ${spoofFrom} udp dport ${port} udp sport set ${victim.port}; }
    }`);
    const hijack = Array.from({ length: 5 }, () => bindingRequest(attacker));
    await nsUdp(ns, { from: spoofFrom, to: port, messages: hijack, listen: 47003, listenMs: 100 });
    const framesB = await decoded(b, a.id);
    await pause(3000);
    const m1 = (await b.serverStats()).media;
    assert.ok(m1.ice_tuple_conflicts - m0.ice_tuple_conflicts >= 5,
      `hijacking checks refused (${m1.ice_tuple_conflicts - m0.ice_tuple_conflicts})`);
    assert.ok((await decoded(b, a.id)) > framesB + 20, 'b keeps decoding a after the attack');
    const still = await b.page.evaluate(async (id) =>
      (await (await fetch(`/stats/connections/${id}`)).json()).ice.selected, b.id);
    assert.deepEqual(still, victim, 'b keeps its tuple');

    // 2. c's credentials with USE-CANDIDATE from an address c does not own (a sink in the
    // namespace): c's subscriptions must not go there.
    ns.nft(`flush table ip spoof
      table ip spoof {
      chain raw { type filter hook output priority raw; policy accept; udp sport ${spoofFrom} notrack; }
      chain out { type filter hook output priority mangle; policy accept;
        udp sport ${spoofFrom} udp dport ${port} udp sport set ${sinkPort}; }
    }`);
    const framesC = await decoded(c, a.id);
    const redirect = Array.from({ length: 5 }, () => bindingRequest(attacker));
    const sink = await nsUdp(ns, { from: spoofFrom, to: port, messages: redirect, listen: sinkPort,
      listenMs: 3000 });
    const m2 = (await b.serverStats()).media;
    console.log(`# hijack: ${m1.ice_tuple_conflicts - m0.ice_tuple_conflicts} checks refused; ` +
      `redirect: ${sink.bytes} bytes reached the chosen address for ${redirect.length} checks ` +
      `(${redirect.reduce((n, m) => n + m.length, 0)} bytes), ${sink.nonStun} media datagrams, ` +
      `nominations refused ` +
      `${m2.ice_nominations_refused - m1.ice_nominations_refused}`);
    // Only STUN reaches the sink: the answers to the checks and the server's own consent
    // checks (at most 3, each under 200 bytes); no media.
    assert.equal(sink.nonStun, 0, 'no media reached the chosen address');
    assert.ok(sink.bytes <= redirect.length * 120 + 3 * 200, `${sink.bytes} bytes reached the sink`);
    assert.ok(m2.ice_nominations_refused - m1.ice_nominations_refused >= 1, 'nomination refused');
    assert.ok((await decoded(c, a.id)) > framesC + 20, 'c keeps decoding a');
    assert.ok(conns.channels.length >= 1);
    await a.leave();
    await b.leave();
    await c.leave();
  } finally {
    await browser?.close();
    await server?.stop();
    ns.destroy();
  }
});
