// Sora Gen-2 E2EE behind an auth webhook that returns authn_metadata. sora-js-sdk 2020.6.2
// and 2023.1.0 read the pre_key_bundle from `authn_metadata` whenever notify has that key
// (getSignalingNotifyAuthnMetadata in their dist/sora.mjs), so hisoka adds the client's
// pre_key_bundle to an object authn_metadata, and leaves out one that is not an object
// (docs/protocol.md §1.7). One client of each version, one with each kind of answer: both
// decode each other within 5 s, and the notify they saw says why.
// Skipped, saying so, when ../shared/sora-e2ee/ is not next to the repository.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { launchChromium } from '../lib/browser.mjs';
import { freePort, startServer } from '../lib/server.mjs';
import { SoraSdkClient, decodesAt, e2eeSkipReason } from '../lib/sora-sdk.js';

const skip = e2eeSkipReason();
const VIDEO = { width: 320, height: 240, frameRate: 15 };

let hook;
let server;
let browser;
const requests = [];

before(async () => {
  if (skip) return;
  const hookPort = await freePort();
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      requests.push(msg);
      // metadata.authn: what the webhook answers as authn_metadata.
      const answer = { allowed: true };
      if (msg.metadata && 'authn' in msg.metadata) answer.authn_metadata = msg.metadata.authn;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((r) => hook.listen(hookPort, '127.0.0.1', r));
  server = await startServer({
    e2ee: 'true',
    log_level: 'info',
    auth_webhook_url: `http://127.0.0.1:${hookPort}/auth`,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (hook) {
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function expectBothDecode(a, b, start) {
  let va;
  let vb;
  while (Date.now() - start < 5000) {
    [va, vb] = await Promise.all([a.view(), b.view()]);
    if (decodesAt(va, vb) && decodesAt(vb, va)) return Date.now() - start;
    await sleep(200);
  }
  assert.fail(`not decoding each other within 5 s: ${JSON.stringify({ a: va, b: vb })}`);
}

test('Sora E2EE with authn_metadata from the auth webhook: an object gets the pre_key_bundle added, a string is left out of notify; 2023.1.0 and 2020.6.2 decode each other', { skip, timeout: 60000 }, async () => {
  const channelId = 'sora-e2ee-webhook';
  const alice = await SoraSdkClient.open(browser, server, {
    version: '2023.1.0', channelId, e2ee: true, video: VIDEO,
    metadata: { authn: { user: 'alice', groups: ['a', 'b'] } },
  });
  const bob = await SoraSdkClient.open(browser, server, {
    version: '2020.6.2', channelId, e2ee: true, video: VIDEO, metadata: { authn: 'bob' },
  });
  try {
    await alice.connect();
    const start = Date.now();
    await bob.connect();
    const ms = await expectBothDecode(alice, bob, start);
    console.log(`decoding each other ${ms} ms after the second join`);
    assert.equal(requests.length, 2);
    assert.equal(requests[0].e2ee, true);

    // The webhook's answers reach the offers unchanged (the SDKs keep them as authMetadata).
    assert.deepEqual(await alice.page.evaluate(() => window.sdkTest.conn.authMetadata),
      { user: 'alice', groups: ['a', 'b'] });
    assert.equal(await bob.page.evaluate(() => window.sdkTest.conn.authMetadata), 'bob');

    // What bob was told about alice: her authn_metadata with her pre_key_bundle added
    // (in the list of his own connection.created: `metadata_list`, the one list a 2020
    // SDK gets, never both lists).
    const bobSaw = await bob.notifies();
    const own = bobSaw.find((n) => n.event_type === 'connection.created' && n.connection_id === bob.id);
    assert.equal(own.data, undefined, 'one list only');
    const aliceEntry = own.metadata_list.find((e) => e.connection_id === alice.id);
    const aliceBundle = aliceEntry.metadata.pre_key_bundle;
    assert.ok(aliceBundle && aliceBundle.identityKey, JSON.stringify(aliceEntry));
    assert.deepEqual(aliceEntry.authn_metadata, { user: 'alice', groups: ['a', 'b'], pre_key_bundle: aliceBundle });
    // ... and bob's own string authn_metadata is not in notify at all.
    assert.ok(!('authn_metadata' in own), JSON.stringify(own));

    // What alice was told about bob: metadata with his pre_key_bundle, no authn_metadata.
    const aliceSaw = await alice.notifies();
    const bobCreated = aliceSaw.find((n) => n.event_type === 'connection.created' && n.connection_id === bob.id);
    assert.ok(bobCreated.metadata.pre_key_bundle.identityKey, JSON.stringify(bobCreated));
    assert.ok(!('authn_metadata' in bobCreated), JSON.stringify(bobCreated));
    // Alice's own event carries her authn_metadata with her bundle too.
    const aliceOwn = aliceSaw.find((n) => n.event_type === 'connection.created' && n.connection_id === alice.id);
    assert.deepEqual(aliceOwn.authn_metadata.pre_key_bundle, aliceOwn.metadata.pre_key_bundle);
    // No notify anywhere carries "authn_metadata": null.
    for (const n of [...aliceSaw, ...bobSaw]) {
      assert.notEqual(n.authn_metadata, null, JSON.stringify(n));
      for (const e of [...(n.data || []), ...(n.metadata_list || [])]) {
        assert.notEqual(e.authn_metadata, null, JSON.stringify(e));
      }
    }
  } finally {
    await bob.leave().catch(() => {});
    await alice.leave().catch(() => {});
  }
  assert.ok(server.alive(), 'hisoka is still running');
});
