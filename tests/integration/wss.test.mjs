// Signaling over TLS (wss://) with a configured self-signed certificate.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import { SoraClient } from '../lib/client.mjs';
import { fakeAnswer } from '../lib/sdp.mjs';
import { selfSignedCertificate, startServer } from '../lib/server.mjs';

test('wss: signaling over TLS with a self-signed certificate', async () => {
  const { dir, cert, key } = selfSignedCertificate();
  const server = await startServer({ tls_certificate_file: cert, tls_private_key_file: key });
  try {
    const url = server.url.replace('ws://', 'wss://');
    const client = new SoraClient(url, { ca: fs.readFileSync(cert), rejectUnauthorized: false });
    await client.opened;
    assert.equal(client.ws.url.startsWith('wss://'), true);
    client.send({ type: 'connect', role: 'sendrecv', channel_id: 'tls' });
    const offer = await client.next('offer');
    client.send({ type: 'answer', sdp: fakeAnswer(offer.sdp) });
    const created = await client.nextNotify('connection.created');
    assert.equal(created.connection_id, offer.connection_id);
    // A plain ws:// client cannot talk to the TLS port.
    const plain = new SoraClient(server.url);
    await assert.rejects(plain.opened);
    client.close();
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
