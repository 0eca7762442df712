// ts-mls members (client/mls.js) in Node over real signaling WebSockets, for the MLS
// integration and abuse tests: join() is tests/lib/abuse.mjs's well-behaved member in an
// MLS channel, fed to an MlsMember; agree() waits until members share one epoch.
import assert from 'node:assert/strict';

import { MlsMember } from '../../client/mls.js';
import { join } from './abuse.mjs';
import { waitFor } from './browser.mjs';

export const MLS = { e2ee: true, e2ee_protocol: 'mls' };

// A signaling member plus its MLS member; m.epochs lists {epoch, code, roster, baseKey,
// leaves: {identity: leaf index}} per epoch.
// memberOptions go to MlsMember (commitDelayMs, rankDelayMs); setting m.silent = true
// later stops handing it the server's messages (a member that goes quiet).
export async function mlsJoin(server, channel, memberOptions = {}) {
  const m = await join(server.url, channel, MLS);
  m.epochs = [];
  m.silent = false;
  m.mls = new MlsMember({
    ...memberOptions,
    connectionId: m.id,
    send: (bytes) => m.client.sendBinary(Buffer.from(bytes)),
    onEpoch: (info) => m.epochs.push({ epoch: Number(info.epoch), code: info.code,
      roster: info.roster.map((r) => r.identity).sort(), baseKey: info.baseKey,
      leaves: Object.fromEntries(info.roster.map((r) => [r.identity, r.leafIndex])) }),
  });
  m.client.ws.on('message', (data, isBinary) => { if (isBinary && !m.silent) m.mls.receive(new Uint8Array(data)); });
  await m.mls.start();
  return m;
}

export const lastEpoch = (m) => m.epochs[m.epochs.length - 1];

// Waits until every member's latest epoch is the same, with exactly these members in its
// roster and one verification code.
export async function agree(members, ms = 8000) {
  const ids = members.map((m) => m.id).sort();
  const ok = await waitFor(async () => members.every((m) => lastEpoch(m)
    && JSON.stringify(lastEpoch(m).roster) === JSON.stringify(ids)
    && lastEpoch(m).epoch === lastEpoch(members[0]).epoch), ms, 50);
  assert.ok(ok, `members agree: ${JSON.stringify(members.map((m) => lastEpoch(m)))}`);
  assert.equal(new Set(members.map((m) => lastEpoch(m).code)).size, 1, 'one verification code');
}
