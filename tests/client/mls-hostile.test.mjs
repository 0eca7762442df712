// A hostile server against MLS members (issue 14's attacks, at the protocol level): the
// server runs the real C delivery service (tests/client/mls-harness.mjs) and uses it as an
// operator could: it adds a ghost, swaps a member's key by removing the member and adding
// its own key package under the member's connection_id, and flashes a ghost in and out.
// What the members must see: every ghost and swap in their roster, in a changed
// verification code and in a banner, and no key that opens frames sent before.
// Run: node --test tests/client/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, buildDriver, connId, makeE2ee, removeDriver } from './mls-harness.mjs';

before(buildDriver);
after(removeDriver);

const A = connId(1);
const B = connId(2);
const GHOST = connId(66);

async function twoMembers(ch) {
  const a = await ch.join(A, { make: makeE2ee });
  const b = await ch.join(B, { make: makeE2ee });
  return { a, b };
}

test('ghost: a member added by the server is in every roster, the code changes, old frames stay closed', async () => {
  const ch = new Channel();
  try {
    const { a, b } = await twoMembers(ch);
    const before = a.e2ee.verificationCode();
    const old = await a.core.encodeFrame(Uint8Array.of(1, 2, 3, 4));
    const ghost = await ch.join(GHOST, { make: makeE2ee });
    for (const x of [a, b]) {
      assert.deepEqual(x.e2ee.members().map((m) => m.connectionId).sort(), [A, B, GHOST].sort());
      assert.notEqual(x.e2ee.verificationCode(), before);
      assert.match(x.updates.at(-1).banner, new RegExp(`joined: ${GHOST}`));
    }
    assert.equal(await ghost.core.decodeFrame(old, A), null, 'frames from before the ghost stay closed');
    assert.equal((await ghost.e2ee.stats()).mls.unknownKey, 1);
  } finally {
    ch.close();
  }
});

test('swap: the server replaces B by its own key package named B; A sees "KEY CHANGED for B"', async () => {
  const ch = new Channel();
  try {
    const { a, b } = await twoMembers(ch);
    const keyOfB = a.e2ee.members().find((m) => m.connectionId === B).signatureKey;
    const old = await a.core.encodeFrame(Uint8Array.of(9, 9, 9));
    // The server drops the real B from its bookkeeping (B hears nothing) and joins an
    // impostor under B's connection_id.
    ch.members.delete(B);
    b.closed = 'swapped';
    await ch.deliver(await ch.ds.cmd(`leave ${B} ${ch.now}`));
    await ch.settle();
    const impostor = await ch.join(B, { make: makeE2ee });
    const now = a.e2ee.members().find((m) => m.connectionId === B);
    assert.ok(now, 'B is back in the roster');
    assert.notEqual(now.signatureKey, keyOfB);
    const banners = a.updates.map((u) => u.banner);
    assert.ok(banners.some((x) => x && x.startsWith(`left: ${B}`)), 'the removal was shown');
    assert.match(a.updates.at(-1).banner, new RegExp(`^KEY CHANGED for ${B}`));
    assert.deepEqual(a.updates.at(-1).credentialChanged, [B]);
    assert.equal(await impostor.core.decodeFrame(old, A), null, 'the impostor reads nothing sent before');
  } finally {
    ch.close();
  }
});

test('flash: a ghost added and removed at once shows twice and reads nothing from before', async () => {
  const ch = new Channel();
  try {
    const { a, b } = await twoMembers(ch);
    const before = a.e2ee.verificationCode();
    const old = await a.core.encodeFrame(Uint8Array.of(5, 5, 5));
    const ghost = await ch.join(GHOST, { make: makeE2ee });
    const during = a.e2ee.verificationCode();
    await ch.leave(GHOST);
    for (const x of [a, b]) {
      const banners = x.updates.map((u) => u.banner).filter(Boolean);
      assert.ok(banners.some((t) => t.startsWith(`joined: ${GHOST}`)));
      assert.ok(banners.some((t) => t.startsWith(`left: ${GHOST}`)));
      assert.deepEqual(x.e2ee.members().map((m) => m.connectionId).sort(), [A, B]);
    }
    const after = a.e2ee.verificationCode();
    assert.equal(new Set([before, during, after]).size, 3, 'three epochs, three codes');
    assert.equal(await ghost.core.decodeFrame(old, A), null);
    const later = await a.core.encodeFrame(Uint8Array.of(6, 6, 6));
    assert.equal(await ghost.core.decodeFrame(later, A), null, 'nor anything after it left');
  } finally {
    ch.close();
  }
});
