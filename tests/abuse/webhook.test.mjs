// The auth webhook: allowed (authn_metadata reaches the offer and the others' notify),
// refused with a reason, no answer in time, a garbage answer, an HTTP error and an
// unreachable URL. After each refusal the server still admits a well-behaved client.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { freePort, startServer } from '../lib/server.mjs';

let hook;
let hookPort;
let server;
const requests = [];

before(async () => {
  hookPort = await freePort();
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      requests.push({ method: req.method, url: req.url, type: req.headers['content-type'], body: msg });
      const mode = msg.metadata && msg.metadata.mode;
      if (mode === 'allow') {
        res.end(JSON.stringify({ allowed: true, authn_metadata: { user: msg.metadata.user } }));
      } else if (mode === 'deny') {
        res.end(JSON.stringify({ allowed: false, reason: 'banned user' }));
      } else if (mode === 'garbage') {
        res.end('this is not json');
      } else if (mode === 'error') {
        res.statusCode = 500;
        res.end('{"allowed": true}');
      } else if (mode === 'silent') {
        setTimeout(() => res.end(JSON.stringify({ allowed: true })), 3000);
      } else {
        res.end(JSON.stringify({ allowed: true }));
      }
    });
  });
  await new Promise((r) => hook.listen(hookPort, '127.0.0.1', r));
  server = await startServer({
    auth_webhook_url: `http://127.0.0.1:${hookPort}/auth/connect`,
    auth_webhook_timeout: '1 s',
  });
});

after(async () => {
  await server?.stop();
  hook.closeAllConnections();
  await new Promise((r) => hook.close(r));
});

async function admitted(channel, metadata) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel, metadata });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, offer };
}

async function refused(metadata) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: 'hook', metadata });
  return c.waitClose(5000);
}

async function stillServes() {
  const ok = await admitted('other', { mode: 'allow', user: 'ok' });
  ok.client.close();
}

test('auth webhook: allowed, with authn_metadata in the offer and in notify', async () => {
  const a = await admitted('hook', { mode: 'allow', user: 'alice' });
  assert.deepEqual(a.offer.metadata, { user: 'alice' });
  const req = requests.at(-1);
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/auth/connect');
  assert.equal(req.type, 'application/json');
  assert.equal(req.body.channel_id, 'hook');
  assert.equal(req.body.connection_id, a.offer.connection_id);
  assert.equal(req.body.role, 'sendrecv');
  assert.equal(req.body.e2ee, false);
  assert.equal(req.body.remote_address, '127.0.0.1');
  assert.deepEqual(req.body.metadata, { mode: 'allow', user: 'alice' });
  const b = await admitted('hook', { mode: 'allow', user: 'bob' });
  const created = await a.client.nextNotify('connection.created');
  assert.equal(created.connection_id, b.offer.connection_id);
  assert.deepEqual(created.authn_metadata, { user: 'bob' });
  a.client.close();
  b.client.close();
});

test('auth webhook: an MLS connect says so (e2ee_protocol), others do not', async () => {
  const e2ee = await startServer({ e2ee: true, auth_webhook_url: `http://127.0.0.1:${hookPort}/auth/connect` });
  try {
    const bodies = [];
    for (const extra of [{ e2ee_protocol: 'mls' }, {}]) {
      const c = await connectClient(e2ee.url, { role: 'sendrecv', channel_id: 'hook-mls', e2ee: true,
        ...extra, metadata: { mode: 'deny' } });
      assert.equal((await c.waitClose(5000)).code, 4401);
      bodies.push(requests.at(-1).body);
    }
    assert.equal(bodies[0].e2ee, true);
    assert.equal(bodies[0].e2ee_protocol, 'mls');
    assert.equal(bodies[1].e2ee, true);
    assert.ok(!('e2ee_protocol' in bodies[1]), JSON.stringify(bodies[1]));
  } finally {
    await e2ee.stop();
  }
});

test('auth webhook: refused with the webhook reason', async () => {
  const closed = await refused({ mode: 'deny' });
  assert.equal(closed.code, 4401);
  assert.equal(closed.reason, 'AUTH-REFUSED: banned user');
  await stillServes();
});

test('auth webhook: no answer in time refuses', async () => {
  const closed = await refused({ mode: 'silent' });
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /^AUTH-WEBHOOK-TIMEOUT/);
  await stillServes();
});

test('auth webhook: a garbage answer refuses', async () => {
  const closed = await refused({ mode: 'garbage' });
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /^AUTH-WEBHOOK-FAILED: .*not JSON/);
  await stillServes();
});

test('auth webhook: an HTTP error refuses', async () => {
  const closed = await refused({ mode: 'error' });
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /HTTP 500/);
  await stillServes();
});

test('auth webhook: an unreachable webhook refuses', async () => {
  const port = await freePort();
  const other = await startServer({ auth_webhook_url: `http://127.0.0.1:${port}/x`, auth_webhook_timeout: '1 s' });
  try {
    const c = await connectClient(other.url, { role: 'sendrecv', channel_id: 'x' });
    const closed = await c.waitClose(5000);
    assert.equal(closed.code, 4401);
    assert.match(closed.reason, /^AUTH-WEBHOOK-(FAILED|TIMEOUT)/);
  } finally {
    await other.stop();
  }
});
