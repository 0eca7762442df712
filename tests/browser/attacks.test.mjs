// The attacks of tests/abuse, all at once, against a live call (docs/threats.md 16-19):
// two Chromium members keep decoding each other while somebody kicks them through the API
// without the secret, from another origin and with a foreign Host, floods their channel
// with inflating metadata, and opens hundreds of idle WebSockets from one address.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';

import { freshChannel, open } from '../lib/abuse.mjs';
import { CallMember, launchChromium, waitFor } from '../lib/browser.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { apiRequest, startServer } from '../lib/server.mjs';

const SECRET = 'browser-attacks-secret-51c0';
let server;
let browser;

before(async () => {
  server = await startServer({ api_secret: SECRET, max_connections_per_address: 80 });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const decoded = async (m, from) => (await m.stats()).remote[from]?.framesDecoded || 0;

test('a call keeps its media through the API, metadata and descriptor attacks', async () => {
  const channel = freshChannel('live');
  const a = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: channel });
  const b = await CallMember.join(browser, server, { role: 'sendrecv', channel_id: channel });
  assert.ok(await waitFor(async () => (await decoded(a, b.id)) > 0 && (await decoded(b, a.id)) > 0,
    15000), 'the call is up');
  const before0 = [await decoded(a, b.id), await decoded(b, a.id)];

  // API: kicks without the secret, from another origin, through a foreign Host.
  const kicks = await Promise.all([
    apiRequest(server, `/connections/${a.id}/disconnect`, { method: 'POST', secret: false }),
    apiRequest(server, `/connections/${a.id}/disconnect`,
      { method: 'POST', headers: { origin: 'http://evil.example' } }),
    apiRequest(server, `/connections/${b.id}`, { method: 'DELETE', headers: { host: 'evil.example' } }),
  ]);
  assert.deepEqual(kicks.map((k) => k.status), [401, 403, 421]);

  // Metadata: 20 recvonly sockets whose metadata jansson would write 5x longer.
  const intruders = [];
  for (let i = 0; i < 20; i++) {
    const c = await open(server.url, { role: 'recvonly', channel_id: channel,
      signaling_notify_metadata: { n: Array.from({ length: 1400 }, () => 1e-7) } });
    const offer = await c.next('offer').catch(() => null);
    if (offer) c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
    intruders.push(c);
  }

  // Descriptors: 300 idle WebSockets from the members' own address.
  const idle = await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve) => {
    const ws = new WebSocket(server.url);
    ws.on('open', () => resolve(ws));
    ws.on('error', () => resolve(ws));
    ws.on('unexpected-response', () => resolve(ws));
  })));

  await new Promise((r) => setTimeout(r, 4000));
  const after0 = [await decoded(a, b.id), await decoded(b, a.id)];
  console.log(`# during the attacks: a decoded ${after0[0] - before0[0]} frames of b, ` +
    `b decoded ${after0[1] - before0[1]} of a`);
  assert.ok(after0[0] - before0[0] >= 30, 'a kept decoding b');
  assert.ok(after0[1] - before0[1] >= 30, 'b kept decoding a');
  const stats = JSON.parse((await apiRequest(server, '/stats')).text);
  const live = stats.channels.find((c) => c.channel_id === channel);
  assert.ok(live.connections.some((c) => c.connection_id === a.id), 'a is still in the channel');
  assert.ok(live.connections.some((c) => c.connection_id === b.id), 'b is still in the channel');
  for (const ws of idle) ws.terminate();
  for (const c of intruders) c.close();
  await a.leave();
  await b.leave();
});
