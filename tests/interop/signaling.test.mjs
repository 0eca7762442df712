// What Sora's own clients need from hisoka's signaling, checked without a browser (these
// run whether or not ../shared/sora-e2ee/ is there): notify never carries
// "authn_metadata": null, an E2EE client's pre_key_bundle is found where sora-js-sdk
// 2020.6.2 and 2023.1.0 look for it also behind an auth webhook, a key message is
// followed by key-frame requests once its publisher's video flows (logged), and a
// sora-js-sdk 2020.6.2 client renegotiates with `update` (both ways) while a newer one
// gets `re-offer`.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { freePort, startServer } from '../lib/server.mjs';

const OLD_SDK = 'Sora JavaScript SDK 2020.6.2';
const NEW_SDK = 'Sora JavaScript SDK 2023.1.0';

let hook;
let hookUrl;
before(async () => {
  const port = await freePort();
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      const answer = { allowed: true };
      if (msg.metadata && 'authn' in msg.metadata) answer.authn_metadata = msg.metadata.authn;
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((r) => hook.listen(port, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${port}/auth`;
});
after(async () => {
  hook.closeAllConnections();
  await new Promise((r) => hook.close(r));
});

async function join(server, channel, extra = {}) {
  const client = await connectClient(server.url, { role: 'sendrecv', channel_id: channel, ...extra });
  const offer = await client.next('offer');
  client.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  const created = await client.nextNotify('connection.created');
  return { client, offer, created, id: offer.connection_id };
}

// What sora-js-sdk 2020.6.2 and 2023.1.0 do with a notify or a `data` entry
// (getSignalingNotifyAuthnMetadata + getPreKeyBundle in their dist/sora.mjs).
function sdkPreKeyBundle(msg) {
  const source = msg.authn_metadata !== undefined ? msg.authn_metadata : msg.metadata;
  return source && typeof source === 'object' && 'pre_key_bundle' in source ? source.pre_key_bundle : null;
}

function bundle(n) {
  return { identityKey: `aWQ${n}`, signedPreKey: `c3Br${n}`, preKeySignature: `c2ln${n}` };
}

function assertNoNullAuthn(msg) {
  assert.notEqual(msg.authn_metadata, null, `"authn_metadata": null in ${JSON.stringify(msg)}`);
  for (const e of msg.data || []) assert.notEqual(e.authn_metadata, null, JSON.stringify(e));
  for (const e of msg.metadata_list || []) assert.notEqual(e.authn_metadata, null, JSON.stringify(e));
}

test('notify never carries "authn_metadata": null; an E2EE pre_key_bundle is found in metadata', async () => {
  const server = await startServer({ e2ee: 'true' });
  try {
    const e2ee = (n) => ({ e2ee: true, signaling_notify_metadata: { pre_key_bundle: bundle(n) } });
    const a = await join(server, 'n', e2ee(1));
    const b = await join(server, 'n', e2ee(2));
    const bCreatedForA = await a.client.nextNotify('connection.created');
    for (const msg of [a.created, b.created, bCreatedForA]) {
      assertNoNullAuthn(msg);
      assert.ok(!('authn_metadata' in msg), JSON.stringify(msg));
    }
    assert.deepEqual(sdkPreKeyBundle(bCreatedForA), bundle(2));
    assert.equal(b.created.data.length, 1);
    assert.ok(!('authn_metadata' in b.created.data[0]));
    assert.deepEqual(sdkPreKeyBundle(b.created.data[0]), bundle(1));
    b.client.send({ type: 'disconnect' });
    const destroyed = await a.client.nextNotify('connection.destroyed');
    assert.ok(!('authn_metadata' in destroyed), JSON.stringify(destroyed));
    assert.deepEqual(sdkPreKeyBundle(destroyed), bundle(2));
    a.client.close();
  } finally {
    await server.stop();
  }
});

test('auth webhook authn_metadata: an object gets the E2EE pre_key_bundle added, another value is left out of notify; the offer keeps it as it is', async () => {
  const server = await startServer({ e2ee: 'true', auth_webhook_url: hookUrl });
  try {
    const member = (n, authn) => ({
      e2ee: true, metadata: { authn }, signaling_notify_metadata: { name: `m${n}`, pre_key_bundle: bundle(n) },
    });
    const a = await join(server, 'w', member(1, { user: 'alice' }));
    const b = await join(server, 'w', member(2, ['bob']));
    const c = await join(server, 'w', member(3, { user: 'carol', pre_key_bundle: 'vouched' }));
    assert.deepEqual(a.offer.metadata, { user: 'alice' });
    assert.deepEqual(b.offer.metadata, ['bob']);

    // c's data: alice's object with her bundle, bob's array left out, and so on.
    const [ea, eb] = c.created.data;
    assert.deepEqual(ea.authn_metadata, { user: 'alice', pre_key_bundle: bundle(1) });
    assert.deepEqual(sdkPreKeyBundle(ea), bundle(1));
    assert.ok(!('authn_metadata' in eb), JSON.stringify(eb));
    assert.deepEqual(sdkPreKeyBundle(eb), bundle(2));
    // A webhook that sets pre_key_bundle itself vouches for it: kept.
    assert.deepEqual(c.created.authn_metadata, { user: 'carol', pre_key_bundle: 'vouched' });
    for (const msg of [a.created, b.created, c.created]) assertNoNullAuthn(msg);
    // What a is told about b: no authn_metadata, so the SDK reads metadata.
    const bForA = await a.client.nextNotify('connection.created');
    assert.ok(!('authn_metadata' in bForA));
    assert.deepEqual(sdkPreKeyBundle(bForA), bundle(2));
    for (const m of [a, b, c]) m.client.close();
  } finally {
    await server.stop();
  }
});

test(`"${OLD_SDK}" renegotiates with update (and its update answers are taken); "${NEW_SDK}" with re-offer`, async () => {
  const server = await startServer({ log_level: 'info' });
  try {
    const old = await join(server, 'u', { sora_client: OLD_SDK });
    const current = await join(server, 'u', { sora_client: NEW_SDK });
    // The old client is offered the newcomer's tracks with `update`...
    const update1 = await old.client.next('update');
    assert.match(update1.sdp, new RegExp(`a=msid:${current.id} `));
    old.client.send({ type: 'update', sdp: fakeAnswer(update1.sdp) });
    // ...and both get a third member's tracks, each in its own way.
    const third = await join(server, 'u', { sora_client: 'Sora JavaScript SDK 2026.1.0' });
    const update2 = await old.client.next('update');
    assert.match(update2.sdp, new RegExp(`a=msid:${third.id} `));
    const reoffer = await current.client.next('re-offer');
    assert.match(reoffer.sdp, new RegExp(`a=msid:${third.id} `));
    old.client.send({ type: 'update', sdp: fakeAnswer(update2.sdp) });
    current.client.send({ type: 're-answer', sdp: fakeAnswer(reoffer.sdp) });
    // A leave: the old client's next update comes only because its last answer was taken
    // (one offer outstanding at a time), and it is still connected.
    third.client.send({ type: 'disconnect' });
    const update3 = await old.client.next('update');
    assert.match(update3.sdp, new RegExp(`m=video 0 `));
    await current.client.next('re-offer');
    assert.equal(old.client.messages.filter((m) => m.type === 're-offer').length, 0, 'no re-offer to the old client');
    assert.equal(current.client.messages.filter((m) => m.type === 'update').length, 0, 'no update to the new client');
    assert.equal(old.client.closeCode, undefined);
    assert.match(server.log, /connect: channel u role sendrecv \(legacy client: renegotiates with update\)/);
    old.client.close();
    current.client.close();
  } finally {
    await server.stop();
  }
});
