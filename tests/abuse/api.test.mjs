// The HTTP API as an attacker on the network sees it (docs/threats.md 16): calls without
// the secret, cross-origin requests (CSRF), foreign Host headers (DNS rebinding), and the
// default of listening on loopback only. Each attack is refused while a member in a
// channel stays connected.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';

import { connectClient } from '../lib/client.mjs';
import { createNetns } from '../lib/netns.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { apiRequest, selfSignedCertificate, startServer } from '../lib/server.mjs';

const SECRET = 'abuse-test-secret-6f1c2a9e47d3';

async function member(server, channel) {
  const c = await connectClient(server.url, { role: 'sendrecv', channel_id: channel });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  return { client: c, id: offer.connection_id };
}

async function connected(server, id) {
  return (await apiRequest(server, `/stats/connections/${id}`)).status === 200;
}

test('abuse 16: with api_secret, everything but /health and /metrics needs the Bearer secret', async () => {
  const server = await startServer({ api_secret: SECRET });
  try {
    const m = await member(server, 'api');
    const none = { secret: false };
    const wrong = { secret: false, headers: { authorization: `Bearer ${SECRET}x` } };
    for (const opts of [none, wrong, { secret: false, headers: { authorization: SECRET } }]) {
      assert.equal((await apiRequest(server, '/stats', opts)).status, 401);
      assert.equal((await apiRequest(server, '/stats/connections', opts)).status, 401);
      assert.equal((await apiRequest(server, `/stats/connections/${m.id}`, opts)).status, 401);
      assert.equal((await apiRequest(server, `/connections/${m.id}/disconnect`,
        { ...opts, method: 'POST' })).status, 401);
      assert.equal((await apiRequest(server, `/connections/${m.id}`,
        { ...opts, method: 'DELETE' })).status, 401);
      assert.equal((await apiRequest(server, '/', { ...opts, method: 'POST',
        headers: { ...opts.headers, 'x-sora-target': 'Sora_20201005.DisconnectConnection' } })).status, 401);
    }
    const refused = await apiRequest(server, '/stats', none);
    assert.equal(refused.headers['www-authenticate'], 'Bearer');
    assert.ok(!refused.text.includes(m.id), 'no connection id without the secret');
    // Open to probes: health and metrics, and metrics name no connection or address.
    assert.equal((await apiRequest(server, '/health', none)).status, 200);
    const metrics = await apiRequest(server, '/metrics', none);
    assert.equal(metrics.status, 200);
    assert.ok(!metrics.text.includes(m.id), 'metrics name no connection');
    assert.match(metrics.text, /hisoka_api_refusals_total\{reason="unauthorized"\} (\d+)/);
    assert.ok(Number(/hisoka_api_refusals_total\{reason="unauthorized"\} (\d+)/.exec(metrics.text)[1]) >= 18);
    // The member was never kicked; with the secret the operator sees it.
    assert.ok(await connected(server, m.id), 'the member is still connected');
    const stats = JSON.parse((await apiRequest(server, '/stats')).text);
    assert.equal(stats.total_connections, 1);
    m.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 16: a flood of /metrics scrapes (no secret needed) holds the media workers at most 20 times a second', async () => {
  const server = await startServer({ api_secret: SECRET, workers: 2 });
  try {
    const m = await member(server, 'metrics-flood');
    const none = { secret: false };
    const repeated = (text) => Number(/^hisoka_metrics_repeated_total (\d+)$/m.exec(text)[1]);
    const N = 200;
    const t0 = Date.now();
    const bodies = [];
    for (let i = 0; i < N; i++) bodies.push((await apiRequest(server, '/metrics', none)).text);
    const seconds = Math.ceil((Date.now() - t0) / 1000) + 1; // windows the burst can span
    await new Promise((r) => setTimeout(r, 1100));
    const after = await apiRequest(server, '/metrics', none);
    const n = repeated(after.text);
    console.log(`# ${N} scrapes in ${Date.now() - t0 - 1100} ms: ${n} answered with the last text, ${N - n} rendered`);
    assert.ok(N - n <= 20 * seconds, `rendered at most 20 a second: ${N - n} in at most ${seconds} windows`);
    assert.ok(n >= N - 20 * seconds && n > 0, `${n} repeated`);
    // A repeated answer is a complete earlier text; the next second renders afresh.
    assert.ok(bodies.every((b) => /^hisoka_metrics_repeated_total \d+$/m.test(b)));
    assert.ok(repeated(after.text) > repeated(bodies[0]), 'a fresh render after the flood');
    assert.ok(await connected(server, m.id), 'the member is still connected');
    m.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 16: cross-origin state changes are refused (CSRF), same-origin ones work', async () => {
  const server = await startServer(); // no secret: loopback only, no credentials asked
  try {
    const m = await member(server, 'csrf');
    const kick = (headers) => apiRequest(server, `/connections/${m.id}/disconnect`,
      { method: 'POST', headers });
    assert.equal((await kick({ origin: 'http://evil.example' })).status, 403);
    assert.equal((await kick({ origin: 'null' })).status, 403);
    assert.equal((await kick({ 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await kick({ 'sec-fetch-site': 'same-site' })).status, 403);
    assert.equal((await apiRequest(server, `/connections/${m.id}`,
      { method: 'DELETE', headers: { origin: 'http://evil.example' } })).status, 403);
    assert.ok(await connected(server, m.id), 'the member is still connected');
    // The API's own origin (e.g. an operator's page served from it) may.
    const own = new URL(server.apiUrl).origin;
    const ok = await kick({ origin: own, 'sec-fetch-site': 'same-origin' });
    assert.equal(ok.status, 200, ok.text);
    m.client.close();
  } finally {
    await server.stop();
  }
});

test('abuse 16: a Host that is not an address, localhost or api_allowed_hosts is refused (DNS rebinding)', async () => {
  const server = await startServer({ api_secret: SECRET, api_allowed_hosts: 'sfu.example.org, other.test' });
  try {
    const m = await member(server, 'rebind');
    const port = new URL(server.apiUrl).port;
    for (const host of ['evil.example', `evil.example:${port}`, 'sfu.example.org.evil.test',
      `127.0.0.1.evil.test:${port}`, `[::1`]) {
      const r = await apiRequest(server, '/stats', { headers: { host } });
      assert.equal(r.status, 421, `Host ${host}: ${r.status}`);
      assert.ok(!r.text.includes(m.id));
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`,
      `SFU.example.org:${port}`, 'other.test']) {
      assert.equal((await apiRequest(server, '/stats', { headers: { host } })).status, 200, host);
    }
    // The demo files too: a foreign Host gets no page.
    const demo = await apiRequest(server, '/demo/', { headers: { host: 'evil.example' } })
      .then((r) => r.status, () => 'closed');
    assert.notEqual(demo, 200);
    assert.equal((await apiRequest(server, '/demo/')).status, 200);
    assert.ok(await connected(server, m.id));
    m.client.close();
  } finally {
    await server.stop();
  }
});

// Runs fetch inside the namespace and returns the status, or 'refused'.
function nsFetch(ns, url) {
  const code = `fetch(process.argv[1]).then((r) => console.log(r.status), () => console.log('refused'))`;
  return new Promise((resolve) => {
    const child = spawn(ns.wrap[0], [...ns.wrap.slice(1), process.execPath, '-e', code, url],
      { timeout: 15000 });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', () => resolve(out.trim()));
  });
}

test('abuse 16: without api_secret the API listens on 127.0.0.1 only, and says so', async () => {
  const ns = createNetns('hkapi');
  let server;
  try {
    // A second address in the namespace stands for the machine's network address.
    execFileSync('ip', ['-n', ns.name, 'addr', 'add', '10.251.0.1/32', 'dev', 'lo']);
    server = await startServer({ listen_address: '0.0.0.0', log_level: 'info' }, { wrap: ns.wrap });
    const port = server.config.api_port;
    assert.equal(await nsFetch(ns, `http://127.0.0.1:${port}/health`), '200');
    assert.equal(await nsFetch(ns, `http://10.251.0.1:${port}/health`), 'refused');
    assert.match(server.log, /api_secret is not set: the API listens on 127\.0\.0\.1 only/);
    // Signaling still listens everywhere (listen_address).
    await server.stop();
    server = await startServer({ listen_address: '0.0.0.0', api_secret: SECRET, log_level: 'info' },
      { wrap: ns.wrap });
    assert.equal(await nsFetch(ns, `http://10.251.0.1:${server.config.api_port}/health`), '200');
  } finally {
    await server?.stop();
    ns.destroy();
  }
});

test('abuse 16: the API over TLS with HSTS when a certificate is configured', async () => {
  const { dir, cert, key } = selfSignedCertificate('hisoka-api-tls-');
  const server = await startServer({ api_secret: SECRET, api_tls_certificate_file: cert,
    api_tls_private_key_file: key });
  try {
    assert.ok(server.apiUrl.startsWith('https://'));
    const r = await apiRequest(server, '/stats');
    assert.equal(r.status, 200);
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
    const demo = await apiRequest(server, '/demo/');
    assert.equal(demo.status, 200);
    assert.equal(demo.headers['strict-transport-security'], 'max-age=31536000');
    // Plain http on the same port gets nothing.
    const plain = await fetch(server.apiUrl.replace('https:', 'http:') + '/health')
      .then((x) => x.status, () => 'refused');
    assert.notEqual(plain, 200);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
