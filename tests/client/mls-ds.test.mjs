// Interop: ts-mls members (client/mls.js) against hisoka's C delivery service
// (server/signal/mls_ds.c, driven through tests/client/mls-ds-driver.c, built here with cc).
// The members must accept the server's external Add and Remove proposals (signed in C
// with OpenSSL's Ed25519), commit, and agree on epoch, roster, verification code and
// SFrame base key. Run: node --test tests/client/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  MlsMember,
  T,
  REFUSED,
  decodeEnvelope,
  decodeGroupBody,
  encodeEnvelope,
  splitMlsKid,
} from '../../client/mls.js';
import { decodeExternalSender } from '../../client/vendor/ts-mls/dist/src/index.js';
import { Channel, assertAgree, buildDriver, connId, hex, removeDriver } from './mls-harness.mjs';

before(buildDriver);
after(removeDriver);

test('three members join through the C DS: external Adds accepted, one commit per epoch', async () => {
  const ch = new Channel();
  try {
    const a = await ch.join(connId(1));
    assert.equal(a.member.epoch, 0n);
    assert.deepEqual(a.member.roster().map((r) => r.identity), [connId(1)]);
    // The group's only external sender is the DS's Ed25519 key (seed 1..32 in the driver).
    const ext = a.member.state.groupContext.extensions.filter((e) => e.extensionType === 'external_senders');
    assert.equal(ext.length, 1);
    const [sender] = decodeExternalSender(ext[0].extensionData, 0);
    const seed = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }))
      .export({ format: 'der', type: 'spki' });
    assert.deepEqual(Buffer.from(sender.signaturePublicKey), spki.subarray(spki.length - 32));
    assert.equal(new TextDecoder().decode(sender.credential.identity), 'hisoka');

    await ch.join(connId(2));
    let first = assertAgree(ch, [connId(1), connId(2)]);
    assert.equal(first.epoch, 1n);
    const codeAt1 = first.verificationCode();
    assert.match(codeAt1, /^\d{5}( \d{5}){5}$/);

    await ch.join(connId(3));
    first = assertAgree(ch, [connId(1), connId(2), connId(3)]);
    assert.equal(first.epoch, 2n);
    assert.notEqual(first.verificationCode(), codeAt1);
    const ds = await ch.dsEpoch();
    assert.equal(ds.epoch, 2n);
    for (const [id, m] of ch.active()) assert.equal(await ch.dsLeaf(id), m.member.leafIndex);
    // Both older members committed for epoch 1 -> 2; exactly one won, the other was refused.
    const won = ch.active().reduce((n, [, m]) => n + m.member.stats.commitsWon, 0);
    assert.equal(won, 2, 'one winning commit per epoch change');
    // Each sender's KID names its own leaf.
    for (const [, m] of ch.active()) {
      const { kid } = m.member.senderKey();
      assert.equal(splitMlsKid(kid).leafIndex, m.member.leafIndex);
      assert.equal(splitMlsKid(kid).epochBits, 2);
    }
  } finally {
    ch.close();
  }
});

test('a leave becomes an external Remove: the rest move on, the leaver is out', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    const b = await ch.join(connId(2));
    await ch.join(connId(3));
    const before = assertAgree(ch, [connId(1), connId(2), connId(3)]);
    const oldKey = before.baseKey;
    const oldEpoch = before.epoch;
    const oldCode = before.verificationCode();
    const bKeyBefore = b.member.baseKey;
    await ch.leave(connId(2));
    const after = assertAgree(ch, [connId(1), connId(3)]);
    assert.equal(after.epoch, oldEpoch + 1n);
    assert.notEqual(after.verificationCode(), oldCode);
    assert.notDeepEqual(after.baseKey, oldKey);
    assert.deepEqual(b.member.baseKey, bKeyBefore, 'the leaver never sees the new key');
    // The freed leaf 1 goes to the next joiner (leftmost blank leaf).
    await ch.join(connId(4));
    assertAgree(ch, [connId(1), connId(3), connId(4)]);
    assert.equal(await ch.dsLeaf(connId(4)), 1);
    assert.equal(ch.members.get(connId(4)).member.leafIndex, 1);
  } finally {
    ch.close();
  }
});

test('a joiner that leaves before any commit is revoked; the group is not stalled', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    await ch.join(connId(2));
    // connId(3) sends its key package, but the members are slow: leave before commit.
    const entry = { outbox: [], epochs: [], events: [] };
    entry.member = new MlsMember({ connectionId: connId(3), send: (b) => entry.outbox.push(b) });
    await ch.ds.cmd(`join ${connId(3)} ${ch.now}`);
    await entry.member.start();
    // Deliver its key package to the DS, but hold the proposal away from the members.
    const r = await ch.ds.cmd(`recv ${connId(3)} ${ch.now} ${hex(entry.outbox.shift())}`);
    const proposals = r.sends.filter((s) => s.bytes[0] === T.PROPOSAL);
    assert.equal(proposals.length, 2);
    for (const s of proposals) ch.members.get(s.to).member.receive(s.bytes);
    const l = await ch.ds.cmd(`leave ${connId(3)} ${ch.now}`);
    assert.ok(l.sends.every((s) => s.bytes[0] === T.REVOKE));
    assert.equal(l.sends.length, 2);
    await ch.deliver(l);
    await ch.settle();
    const first = assertAgree(ch, [connId(1), connId(2)]);
    assert.equal(first.epoch, 1n);
    await ch.join(connId(5));
    assertAgree(ch, [connId(1), connId(2), connId(5)]);
  } finally {
    ch.close();
  }
});

test('a silent member cannot stall the group: deadline, new group, the silent one closed', async () => {
  const ch = new Channel(['500', '3000']);
  try {
    // A creates the group and then goes silent (receives nothing, sends nothing).
    const a = await ch.join(connId(1));
    a.muted = true;
    await ch.join(connId(2));
    assert.equal(ch.members.get(connId(2)).member.state, null, 'B waits for a welcome');
    await ch.tick(600); // the commit deadline passes: B creates a new group
    const b = ch.members.get(connId(2)).member;
    assert.ok(b.state, 'B is in a new group');
    assert.deepEqual(b.roster().map((r) => r.identity), [connId(2)]);
    await ch.join(connId(3));
    assertAgree(ch, [connId(2), connId(3)]);
    // A owes a key package for the new group; after key_package_timeout it is closed.
    await ch.tick(3100);
    assert.deepEqual(ch.closed.map((c) => [c.id, c.reason]), [[connId(1), 'MLS-NO-KEY-PACKAGE']]);
    assertAgree(ch, [connId(2), connId(3)]);
  } finally {
    ch.close();
  }
});

test('garbage and stale commits are refused with a reason; repeated garbage closes', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    await ch.join(connId(2));
    const a = ch.members.get(connId(1));
    // A commit of epoch 0 (already past) is refused as stale, not counted as garbage.
    const past = a.member.state.groupContext.epoch - 1n;
    const refused = [];
    for (let i = 0; i < 5; i++) {
      const bytes = encodeEnvelope(T.COMMIT, past, Uint8Array.of(0, 1, 0, 1, 0xff));
      const r = await ch.ds.cmd(`recv ${connId(1)} ${ch.now} ${hex(bytes)}`);
      refused.push(...r.sends.filter((s) => s.bytes[0] === T.COMMIT_REFUSED).map((s) => s.bytes[14]));
      if (r.closes.length) {
        assert.deepEqual(r.closes, [{ id: connId(1), reason: 'MLS-MALFORMED' }]);
        await ch.deliver(r);
        a.closed = 'MLS-MALFORMED';
        break;
      }
    }
    assert.deepEqual(refused, [REFUSED.MALFORMED, REFUSED.MALFORMED, REFUSED.MALFORMED,
      REFUSED.MALFORMED, REFUSED.MALFORMED]);
    ch.members.delete(connId(1));
    await ch.settle();
    // B goes on alone (A's Remove was proposed and B committed it).
    const b = ch.members.get(connId(2)).member;
    assert.deepEqual(b.roster().map((r) => r.identity), [connId(2)]);
    const env = decodeEnvelope(encodeEnvelope(T.INVALID, 7n));
    assert.equal(env.epoch, 7n);
  } finally {
    ch.close();
  }
});

test('GROUP message: action, suite 1, 16-byte group id, external sender', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    const group = ch.log.find((l) => l.type === T.GROUP);
    assert.ok(group);
    const r = await ch.ds.cmd(`join ${connId(9)} ${ch.now}`);
    assert.equal(r.done.value, 0);
    const m = new MlsMember({ connectionId: connId(9), send: () => {} });
    let sent;
    m.send = (b) => (sent = b);
    await m.start();
    const res = await ch.ds.cmd(`recv ${connId(9)} ${ch.now} ${hex(sent)}`);
    const g = res.sends.find((s) => s.to === connId(9) && s.bytes[0] === T.GROUP);
    const body = decodeGroupBody(decodeEnvelope(g.bytes).body);
    assert.equal(body.action, 2);
    assert.equal(body.cipherSuite, 1);
    assert.equal(body.groupId.length, 16);
    assert.deepEqual(body.groupId, ch.members.get(connId(1)).member.groupId);
  } finally {
    ch.close();
  }
});

test('INVALID: the member is removed and rejoins with the same signature key', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    const b = await ch.join(connId(2));
    const keyBefore = b.member.roster().find((r) => r.identity === connId(2)).signatureKey;
    const epochBefore = b.member.epoch;
    b.member.send(encodeEnvelope(T.INVALID, epochBefore));
    b.member.state = null; // as after a failure
    await ch.settle();
    const first = assertAgree(ch, [connId(1), connId(2)]);
    // The Remove and the new Add may land in one commit or in two.
    assert.ok(first.epoch > epochBefore && first.epoch <= epochBefore + 2n);
    assert.equal(b.member.roster().find((r) => r.identity === connId(2)).signatureKey, keyBefore);
  } finally {
    ch.close();
  }
});

test('the lowest leaf is silent: the next member commits after its rank delay, no deadline needed', async () => {
  const ch = new Channel();
  try {
    await ch.join(connId(1));
    await ch.join(connId(2));
    await ch.join(connId(3));
    ch.members.get(connId(1)).muted = true;
    const resets = ch.log.filter((l) => l.type === T.GROUP).length;
    await ch.join(connId(4));
    await ch.settle(12);
    const first = assertAgree(ch, [connId(1), connId(2), connId(3), connId(4)]);
    assert.equal(first.epoch, 3n);
    assert.equal(ch.log.filter((l) => l.type === T.GROUP).length, resets + 1, 'only the joiner\'s GROUP');
    assert.equal(ch.members.get(connId(2)).member.stats.commitsWon, 1);
    // C (rank 2) commits only if B's commit is not announced to it within 20 ms more,
    // which this single-process simulation cannot promise; it never wins over B.
    assert.equal(ch.members.get(connId(3)).member.stats.commitsWon, 0);
  } finally {
    ch.close();
  }
});
