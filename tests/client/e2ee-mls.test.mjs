// client/e2ee-mls.js end to end without a browser: E2EEMls members (ts-mls + the worker
// core in process) keyed through hisoka's C delivery service (tests/client/mls-harness.mjs)
// encrypt and decrypt each other's frames; a joiner cannot read frames from before it
// joined, a leaver cannot read frames after it left; the roster, verification code and
// banners come from the group. Run: node --test tests/client/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, buildDriver, connId, makeE2ee, removeDriver } from './mls-harness.mjs';

before(buildDriver);
after(removeDriver);

const frame = (seed) => Uint8Array.from({ length: 60 }, (_, i) => (i * 7 + seed) & 0xff);

async function roundTrip(from, fromId, to) {
  const pt = frame(fromId.charCodeAt(3));
  const wire = await from.core.encodeFrame(pt);
  assert.ok(wire, 'sender produced a frame');
  return { wire, out: await to.core.decodeFrame(wire, fromId) };
}

test('three E2EEMls members decode each other; join and leave rekey; rosters from the group', async () => {
  const ch = new Channel();
  try {
    const A = connId(1), B = connId(2), C = connId(3);
    const a = await ch.join(A, { make: makeE2ee });
    const b = await ch.join(B, { make: makeE2ee });
    // Frames sent before C joins.
    const early = await roundTrip(a, A, b);
    assert.deepEqual(early.out, frame(A.charCodeAt(3)));
    const c = await ch.join(C, { make: makeE2ee });
    for (const [x, xid] of [[a, A], [b, B], [c, C]]) {
      for (const y of [a, b, c]) {
        if (y === x) continue;
        const r = await roundTrip(x, xid, y);
        assert.deepEqual(r.out, frame(xid.charCodeAt(3)), `${xid} -> decoded`);
      }
    }
    assert.equal(await c.core.decodeFrame(early.wire, A), null, 'the joiner cannot read earlier frames');
    // Same code and roster everywhere, from the group.
    const code = a.e2ee.verificationCode();
    assert.match(code, /^\d{5}( \d{5}){5}$/);
    for (const x of [b, c]) assert.equal(x.e2ee.verificationCode(), code);
    assert.deepEqual(c.e2ee.members().map((m) => m.connectionId).sort(), [A, B, C]);
    assert.equal(a.updates.at(-1).banner, `joined: ${C} — verification code now ${code}`);
    assert.match(c.updates[0].banner, /^in the group: /);

    // C leaves: A and B rekey; C's keys no longer open their frames.
    await ch.leave(C);
    const r = await roundTrip(a, A, b);
    assert.deepEqual(r.out, frame(A.charCodeAt(3)));
    assert.equal(await c.core.decodeFrame(r.wire, A), null, 'the leaver cannot read later frames');
    assert.notEqual(a.e2ee.verificationCode(), code);
    assert.equal(a.updates.at(-1).banner, `left: ${C} — verification code now ${a.e2ee.verificationCode()}`);
    // A frame moved onto another member's track, or replayed, is dropped and counted.
    assert.equal(await b.core.decodeFrame(r.wire, A), null, 'replay');
    const moved = (await roundTrip(a, A, a)).wire;
    assert.equal(await b.core.decodeFrame(moved, B), null, 'moved onto B\'s track');
    const stats = await b.e2ee.stats();
    assert.equal(stats.mls.replayed, 1);
    assert.equal(stats.mls.wrongSender, 1);
    // When b first decrypted a frame of A's in each epoch (B's join, C's join, C's leave),
    // by the worker's clock.
    const e = Number(a.e2ee.mls.epoch);
    assert.deepEqual(stats[A].epochsAt.map(([bits]) => bits), [e - 2, e - 1, e]);
    const times = stats[A].epochsAt.map(([, at]) => at);
    assert.ok(times.every((t, i) => t <= Date.now() && (i === 0 || t >= times[i - 1])), `times: ${times}`);
  } finally {
    ch.close();
  }
});

test('E2EEMls refuses round-1 key messages and ignores notify member lists', async () => {
  const ch = new Channel();
  try {
    const a = await ch.join(connId(1), { make: makeE2ee });
    assert.equal(await a.e2ee.onKeyMessage(Uint8Array.of(2, 0, 0, 1).buffer), false);
    assert.equal(a.e2ee.keyMessagesRejected, 1);
    await a.e2ee.addMember(connId(9), 'ignored');
    assert.deepEqual(a.e2ee.members().map((m) => m.connectionId), [connId(1)]);
    assert.equal(a.e2ee.publicKeyBase64, null);
  } finally {
    ch.close();
  }
});
