// TLS and files (docs/threats.md 20): weak TLS versions and CBC/SHA-1 suites are refused on
// the signaling and API ports, HTTP/2 is never negotiated, an https auth webhook works with
// plain signaling and has its certificate checked, and /demo/ serves nothing through a
// symlink that leaves demo_directory. Checks are made with `openssl s_client`, as testssl
// would; a well-behaved client is served after each.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { SoraClient, connectClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { apiRequest, freePort, selfSignedCertificate, startServer } from '../lib/server.mjs';

// One s_client handshake; {ok, out}: ok when a cipher was agreed.
function handshake(port, args) {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername',
    'localhost', ...args], { input: '', encoding: 'utf8', timeout: 10000 });
  const out = `${r.stdout}${r.stderr}`;
  const cipher = /Cipher is (\S+)/.exec(out);
  return { ok: r.status === 0 && !!cipher && cipher[1] !== '(NONE)', out };
}

async function served(url, ca) {
  const c = new SoraClient(url, { ca, rejectUnauthorized: false });
  await c.opened;
  c.send({ type: 'connect', role: 'sendrecv', channel_id: 'tls-ok' });
  const offer = await c.next('offer');
  c.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
  await c.nextNotify('connection.created');
  c.close();
}

test('abuse 20: TLS 1.2 with AEAD suites and TLS 1.3 only, no HTTP/2, on signaling and the API', async () => {
  const { dir, cert, key } = selfSignedCertificate();
  const server = await startServer({ tls_certificate_file: cert, tls_private_key_file: key });
  try {
    const wss = server.url.replace('ws://', 'wss://');
    for (const port of [server.config.signaling_port, server.config.api_port]) {
      // The client is told to allow old protocols (security level 0), so a refusal is the server's.
      for (const refusedArgs of [
        ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'],
        ['-tls1', '-cipher', 'DEFAULT@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA384@SECLEVEL=0'],
        ['-tls1_2', '-cipher', 'AES128-GCM-SHA256@SECLEVEL=0'],
      ]) {
        const r = handshake(port, refusedArgs);
        assert.equal(r.ok, false, `port ${port} accepted ${refusedArgs.join(' ')}:\n${r.out.slice(-600)}`);
      }
      for (const acceptedArgs of [['-tls1_3'], ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
        ['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305']]) {
        const r = handshake(port, acceptedArgs);
        assert.ok(r.ok, `port ${port} refused ${acceptedArgs.join(' ')}:\n${r.out.slice(-600)}`);
      }
      const h2 = handshake(port, ['-alpn', 'h2,http/1.1']);
      assert.ok(h2.ok);
      assert.doesNotMatch(h2.out, /ALPN protocol: h2/, `port ${port} negotiated HTTP/2`);
    }
    await served(wss, fs.readFileSync(cert));
    assert.equal((await apiRequest(server, '/health')).status, 200);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('abuse 20: an https auth webhook works without signaling TLS, and its certificate is checked', async () => {
  const good = selfSignedCertificate('hisoka-hook-');
  const other = selfSignedCertificate('hisoka-other-');
  const hookPort = await freePort();
  let calls = 0;
  const hook = https.createServer({ cert: fs.readFileSync(good.cert), key: fs.readFileSync(good.key) },
    (req, res) => {
      calls++;
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ allowed: true })));
    });
  await new Promise((r) => hook.listen(hookPort, '127.0.0.1', r));
  const url = `https://127.0.0.1:${hookPort}/auth`;
  let server = await startServer({ auth_webhook_url: url, auth_webhook_ca_file: good.cert });
  try {
    assert.ok(server.url.startsWith('ws://'), 'signaling is plain');
    const c = await connectClient(server.url, { role: 'sendrecv', channel_id: 'hook' });
    const offer = await c.next('offer');
    assert.ok(offer.connection_id, 'admitted through the https webhook');
    assert.equal(calls, 1);
    c.close();
    await server.stop();
    // The same webhook, but its certificate is not among the trusted ones: refused.
    server = await startServer({ auth_webhook_url: url, auth_webhook_ca_file: other.cert });
    const d = await connectClient(server.url, { role: 'sendrecv', channel_id: 'hook' });
    const closed = await d.waitClose(10000);
    assert.equal(closed.code, 4401, `closed ${closed.code} ${closed.reason}`);
    assert.equal(calls, 1, 'no request went to an unverified server');
  } finally {
    await server.stop();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
    fs.rmSync(good.dir, { recursive: true, force: true });
    fs.rmSync(other.dir, { recursive: true, force: true });
  }
});

test('abuse 20: /demo/ serves nothing through a symlink that leaves demo_directory', async () => {
  const demo = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-demo-'));
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-secret-'));
  fs.writeFileSync(path.join(demo, 'index.html'), '<p>demo</p>');
  fs.mkdirSync(path.join(demo, 'js'));
  fs.writeFileSync(path.join(demo, 'js', 'app.js'), 'ok()');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'SECRET-CONTENT');
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(demo, 'leak.txt'));
  fs.symlinkSync(outside, path.join(demo, 'dir'));
  fs.symlinkSync(path.join(demo, 'js', 'app.js'), path.join(demo, 'inside.js'));
  const server = await startServer({ demo_directory: demo });
  try {
    for (const p of ['/demo/leak.txt', '/demo/dir/secret.txt']) {
      const r = await apiRequest(server, p).catch(() => ({ status: 'closed', text: '' }));
      assert.notEqual(r.status, 200, p);
      assert.ok(!r.text.includes('SECRET-CONTENT'), `${p} leaked`);
    }
    assert.equal((await apiRequest(server, '/demo/index.html')).text, '<p>demo</p>');
    assert.equal((await apiRequest(server, '/demo/inside.js')).text, 'ok()', 'a link within is fine');
    assert.equal((await apiRequest(server, '/health')).status, 200);
  } finally {
    await server.stop();
    fs.rmSync(demo, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  }
});
