// mls.js — MLS (RFC 9420) group keys for an E2EE channel whose delivery service and
// only external sender is hisoka (docs/protocol.md §6). Browser main thread and Node 20+.
//
// One MlsMember per connection. It owns a signature key pair and a key package for the
// session (credential: basic, identity = the connection_id, 26 ASCII bytes), and talks to
// the server through binary messages in hisoka's MLS envelope:
//
//   byte 0      type (0x10..0x18)
//   byte 1      reserved = 0
//   bytes 2-9   epoch (uint64, big-endian)
//   bytes 10-13 body length (uint32, big-endian), then the body, nothing after
//
// The member never trusts the server's roster: roster(), verificationCode() and the keys
// all come from the group state, and the group accepts proposals only from the external
// sender whose key is in its group context (the server's, fixed at creation).
//
// Keys for frames (RFC 9605 §5.2): per epoch, base_key = MLS-Exporter("SFrame 1.0 Base
// Key", "", 16); each sender's SFrame key is derived from it with its own KID (RFC 9605
// §4.4.2 binds the KID), KID = (leaf index << EPOCH_BITS) | (epoch mod 2^EPOCH_BITS).
// See sframe-mls.js for the frame side (KIDs, old epochs, replay window, sender check).

import {
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeExternalSender,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  mlsExporter,
  processPublicMessage,
  decodeExternalSender,
} from './vendor/ts-mls/dist/src/index.js';
import { mlsKid } from './sframe-mls.js';

export { mlsKid, splitMlsKid, EPOCH_BITS } from './sframe-mls.js';

export const CIPHER_SUITE_NAME = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';
export const CIPHER_SUITE = 1;
export const EXPORTER_LABEL = 'SFrame 1.0 Base Key';
export const BASE_KEY_LENGTH = 16; // AES-128-GCM Nk

export const T = Object.freeze({
  KEY_PACKAGE: 0x10,
  GROUP: 0x11,
  PROPOSAL: 0x12,
  REVOKE: 0x13,
  COMMIT: 0x14,
  ANNOUNCE_COMMIT: 0x15,
  WELCOME: 0x16,
  COMMIT_REFUSED: 0x17,
  INVALID: 0x18,
});
export const GROUP_CREATE = 1;
export const GROUP_JOIN = 2;
export const GROUP_REJOIN = 3;
export const REFUSED = Object.freeze({
  STALE_EPOCH: 1,
  PROPOSALS: 2,
  NOTHING: 3,
  WELCOME: 4,
  MALFORMED: 5,
});
export const ENVELOPE_HEADER = 14;

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

// ---- envelope ---------------------------------------------------------------------

export function encodeEnvelope(type, epoch, body = new Uint8Array(0)) {
  const out = new Uint8Array(ENVELOPE_HEADER + body.length);
  const v = new DataView(out.buffer);
  out[0] = type;
  v.setBigUint64(2, BigInt(epoch));
  v.setUint32(10, body.length);
  out.set(body, ENVELOPE_HEADER);
  return out;
}

export function decodeEnvelope(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length < ENVELOPE_HEADER) throw new RangeError('MLS envelope shorter than its header');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] < 0x10 || b[0] > 0x18) throw new RangeError('unknown MLS envelope type');
  if (b[1] !== 0) throw new RangeError('MLS envelope reserved byte is not 0');
  const len = v.getUint32(10);
  if (len !== b.length - ENVELOPE_HEADER) throw new RangeError('MLS envelope length mismatch');
  return { type: b[0], epoch: v.getBigUint64(2), body: b.subarray(ENVELOPE_HEADER) };
}

// ---- small codecs -----------------------------------------------------------------

function readVarint(b, off) {
  const prefix = b[off] >> 6;
  const n = [1, 2, 4][prefix];
  if (n === undefined || off + n > b.length) throw new RangeError('bad varint');
  let v = b[off] & 0x3f;
  for (let i = 1; i < n; i++) v = v * 256 + b[off + i];
  return [v, n];
}

function readOpaque(b, off) {
  const [len, n] = readVarint(b, off);
  if (off + n + len > b.length) throw new RangeError('opaque truncated');
  return [b.subarray(off + n, off + n + len), n + len];
}

/** The body of a GROUP message: {action, cipherSuite, groupId, externalSender (bytes)}. */
export function decodeGroupBody(body) {
  if (body.length < 4) throw new RangeError('GROUP body truncated');
  const action = body[0];
  const cipherSuite = (body[1] << 8) | body[2];
  const [groupId, n] = readOpaque(body, 3);
  const externalSender = body.subarray(3 + n);
  return { action, cipherSuite, groupId: groupId.slice(), externalSender: externalSender.slice() };
}

function equalBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function toBase64(bytes) {
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s);
}

// ---- verification code -------------------------------------------------------------

/**
 * DAVE's displayable code: the first 30 bytes of the epoch authenticator cut into six
 * 5-byte chunks, each read big-endian, reduced mod 100000, written as 5 digits; the
 * groups are joined with spaces ("01234 56789 ..."). The same on every screen of the
 * same epoch; a new epoch (any membership change) gives a new code.
 */
export function verificationCode(epochAuthenticator) {
  if (!(epochAuthenticator instanceof Uint8Array) || epochAuthenticator.length < 30) {
    throw new RangeError('epoch authenticator must be at least 30 bytes');
  }
  const groups = [];
  for (let g = 0; g < 6; g++) {
    let v = 0n;
    for (let i = 0; i < 5; i++) v = (v << 8n) | BigInt(epochAuthenticator[g * 5 + i]);
    groups.push((v % 100000n).toString().padStart(5, '0'));
  }
  return groups.join(' ');
}

let implPromise = null;
export function cipherSuiteImpl() {
  if (!implPromise) implPromise = getCiphersuiteImpl(getCiphersuiteFromName(CIPHER_SUITE_NAME));
  return implPromise;
}

// ---- one member --------------------------------------------------------------------

/**
 * new MlsMember({connectionId, send(bytes), onEpoch(info), onEvent(name, detail),
 *                commitDelayMs, rankDelayMs})
 *   start()           makes the key package and sends it (call after the offer)
 *   receive(bytes)    one binary message from the server whose first byte is 0x10..0x1f;
 *                     messages are processed strictly in order
 *   roster()          [{leafIndex, identity}] from the group's leaves
 *   epoch, groupId, verificationCode(), senderKey(), keysForEpoch()
 * onEpoch({epoch, roster, code, baseKey, leafIndex}) fires after each new epoch.
 */
export class MlsMember {
  constructor({
    connectionId,
    send,
    onEpoch = () => {},
    onEvent = () => {},
    commitDelayMs = 5,
    rankDelayMs = 150,
  }) {
    if (typeof connectionId !== 'string' || connectionId.length !== 26) {
      throw new TypeError('connectionId must be the 26-character connection_id');
    }
    this.connectionId = connectionId;
    this.send = send;
    this.onEpoch = onEpoch;
    this.onEvent = onEvent;
    // Every member may commit and the server takes the first; to spare the others the
    // work, a member waits commitDelayMs plus rankDelayMs per member with a lower leaf
    // index. The lowest commits first; the next ones only if no commit was announced in
    // the meantime (a silent or slow member does not stall the group).
    this.commitDelayMs = commitDelayMs;
    this.rankDelayMs = rankDelayMs;
    this.state = null; // ts-mls ClientState
    this.keyPackage = null; // {publicPackage, privatePackage}
    this.signatureKeys = null; // {signKey, publicKey}, for the whole session
    this.expected = null; // {groupId, externalSender} from the last GROUP message
    this.pendingCommit = null; // {bytes, newState, epoch}
    this.commitTimer = null;
    this.queue = Promise.resolve();
    this.baseKey = null;
    this.stats = { commitsSent: 0, commitsWon: 0, refused: 0, invalid: 0, revoked: 0 };
  }

  get epoch() {
    return this.state ? this.state.groupContext.epoch : null;
  }

  get groupId() {
    return this.state ? this.state.groupContext.groupId : null;
  }

  get leafIndex() {
    return this.state ? this.state.privatePath.leafIndex : null;
  }

  async start() {
    await this.#newKeyPackage();
  }

  async #newKeyPackage() {
    const impl = await cipherSuiteImpl();
    const credential = { credentialType: 'basic', identity: utf8.encode(this.connectionId) };
    // One signature key pair for the session: a rejoin (new key package) keeps it, so the
    // other members see the same credential come back, not a new one.
    if (!this.signatureKeys) this.signatureKeys = await impl.signature.keygen();
    this.keyPackage = await generateKeyPackageWithKey(
      credential,
      defaultCapabilities(),
      defaultLifetime,
      [],
      this.signatureKeys,
      impl,
    );
    const bytes = encodeMlsMessage({
      version: 'mls10',
      wireformat: 'mls_key_package',
      keyPackage: this.keyPackage.publicPackage,
    });
    this.send(encodeEnvelope(T.KEY_PACKAGE, 0n, bytes));
  }

  receive(bytes) {
    const copy = new Uint8Array(bytes).slice();
    this.queue = this.queue.then(() => this.#handle(copy)).catch((e) => this.#invalid(e));
    return this.queue;
  }

  /** Resolves once every message received so far has been processed. */
  idle() {
    return this.queue;
  }

  async #invalid(e) {
    this.stats.invalid++;
    this.onEvent('invalid', String(e && e.message ? e.message : e));
    this.state = null;
    this.pendingCommit = null;
    this.send(encodeEnvelope(T.INVALID, 0n));
  }

  async #handle(bytes) {
    const env = decodeEnvelope(bytes);
    const impl = await cipherSuiteImpl();
    switch (env.type) {
      case T.GROUP: {
        const g = decodeGroupBody(env.body);
        if (g.cipherSuite !== CIPHER_SUITE) throw new Error('server asked for another cipher suite');
        decodeExternalSender(g.externalSender, 0); // must parse
        this.expected = { groupId: g.groupId, externalSender: g.externalSender };
        if (g.action === GROUP_CREATE) {
          const ext = { extensionType: 'external_senders', extensionData: g.externalSender };
          this.state = await createGroup(
            g.groupId,
            this.keyPackage.publicPackage,
            this.keyPackage.privatePackage,
            [ext],
            impl,
          );
          await this.#newEpoch(impl);
        } else if (g.action === GROUP_REJOIN) {
          this.state = null;
          this.pendingCommit = null;
          await this.#newKeyPackage();
        } else if (g.action !== GROUP_JOIN) {
          throw new Error('unknown GROUP action');
        }
        return;
      }
      case T.PROPOSAL: {
        if (!this.state) return; // not in the group yet: not for us
        const msg = this.#decode(env.body, 'mls_public_message');
        const content = msg.publicMessage.content;
        if (content.sender.senderType !== 'external') throw new Error('proposal not from the external sender');
        if (content.epoch !== this.state.groupContext.epoch) return; // a stale one: ignore
        const r = await processPublicMessage(this.state, msg.publicMessage, emptyPskIndex, impl);
        this.state = r.newState;
        this.#scheduleCommit();
        return;
      }
      case T.REVOKE: {
        if (!this.state || env.epoch !== this.state.groupContext.epoch) return;
        let off = 0;
        const [list, n] = readOpaque(env.body, 0);
        if (n !== env.body.length) throw new Error('REVOKE body malformed');
        const proposals = { ...this.state.unappliedProposals };
        while (off < list.length) {
          const [ref, m] = readOpaque(list, off);
          delete proposals[toBase64(ref)];
          off += m;
          this.stats.revoked++;
        }
        this.state = { ...this.state, unappliedProposals: proposals };
        this.#scheduleCommit();
        return;
      }
      case T.ANNOUNCE_COMMIT: {
        if (!this.state) return;
        if (env.epoch !== this.state.groupContext.epoch) return;
        const mine = this.pendingCommit;
        this.pendingCommit = null;
        if (mine && mine.epoch === env.epoch && equalBytes(mine.bytes, env.body)) {
          this.state = mine.newState;
          this.stats.commitsWon++;
        } else {
          const msg = this.#decode(env.body, 'mls_public_message');
          const r = await processPublicMessage(this.state, msg.publicMessage, emptyPskIndex, impl);
          this.state = r.newState;
        }
        if (this.state.groupActiveState.kind === 'removedFromGroup') {
          this.state = null;
          this.baseKey = null;
          this.onEvent('removed', null);
          return;
        }
        await this.#newEpoch(impl);
        return;
      }
      case T.WELCOME: {
        if (this.state) return; // already in a group: not for us
        const msg = this.#decode(env.body, 'mls_welcome');
        const state = await joinGroup(
          msg.welcome,
          this.keyPackage.publicPackage,
          this.keyPackage.privatePackage,
          emptyPskIndex,
          impl,
        );
        if (this.expected && !equalBytes(state.groupContext.groupId, this.expected.groupId)) {
          throw new Error('welcome for another group than the server announced');
        }
        const senders = state.groupContext.extensions.filter((e) => e.extensionType === 'external_senders');
        if (
          senders.length !== 1 ||
          !this.expected ||
          !equalBytes(senders[0].extensionData, this.expected.externalSender)
        ) {
          throw new Error('group does not have exactly the announced external sender');
        }
        this.state = state;
        await this.#newEpoch(impl);
        return;
      }
      case T.COMMIT_REFUSED: {
        this.stats.refused++;
        const reason = env.body[0];
        const mine = this.pendingCommit;
        this.pendingCommit = null;
        this.onEvent('refused', reason);
        // STALE_EPOCH: the winner is (or will be) announced. PROPOSALS: a proposal came
        // meanwhile, commit again on the same epoch.
        if (reason === REFUSED.PROPOSALS && mine) this.#scheduleCommit();
        return;
      }
      default:
        throw new Error(`MLS message type ${env.type} is not for clients`);
    }
  }

  #decode(body, wireformat) {
    const decoded = decodeMlsMessage(body, 0);
    if (!decoded) throw new Error('MLSMessage does not decode');
    const [msg, used] = decoded;
    if (used !== body.length) throw new Error('bytes after the MLSMessage');
    if (msg.wireformat !== wireformat) throw new Error(`expected ${wireformat}`);
    return msg;
  }

  #scheduleCommit() {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null;
      this.queue = this.queue.then(() => this.#commit()).catch((e) => this.#invalid(e));
    }, this.commitDelayMs + this.#rank() * this.rankDelayMs);
  }

  // Members with a lower leaf index, leaving out those a pending Remove takes away.
  #rank() {
    if (!this.state) return 0;
    const own = this.leafIndex;
    const leaving = new Set(
      Object.values(this.state.unappliedProposals)
        .filter((p) => p.proposal.proposalType === 'remove')
        .map((p) => p.proposal.remove.removed),
    );
    return this.roster().filter((r) => r.leafIndex < own && !leaving.has(r.leafIndex)).length;
  }

  async #commit() {
    if (!this.state || Object.keys(this.state.unappliedProposals).length === 0) return;
    if (this.pendingCommit && this.pendingCommit.epoch === this.state.groupContext.epoch) return;
    const impl = await cipherSuiteImpl();
    const r = await createCommit(
      { state: this.state, cipherSuite: impl },
      { wireAsPublicMessage: true, ratchetTreeExtension: true },
    );
    const commitBytes = encodeMlsMessage(r.commit);
    const welcomeBytes = r.welcome
      ? encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: r.welcome })
      : new Uint8Array(0);
    const epoch = this.state.groupContext.epoch;
    this.pendingCommit = { bytes: commitBytes, newState: r.newState, epoch };
    this.stats.commitsSent++;
    this.send(encodeEnvelope(T.COMMIT, epoch, concat(commitBytes, welcomeBytes)));
  }

  async #newEpoch(impl) {
    this.baseKey = await mlsExporter(
      this.state.keySchedule.exporterSecret,
      EXPORTER_LABEL,
      new Uint8Array(0),
      BASE_KEY_LENGTH,
      impl,
    );
    this.onEpoch({
      epoch: this.state.groupContext.epoch,
      roster: this.roster(),
      code: this.verificationCode(),
      baseKey: this.baseKey,
      leafIndex: this.leafIndex,
    });
  }

  /** The group's members from its leaves: [{leafIndex, identity}], never the server's list. */
  roster() {
    if (!this.state) return [];
    const out = [];
    this.state.ratchetTree.forEach((node, i) => {
      if (i % 2 === 0 && node && node.nodeType === 'leaf') {
        const c = node.leaf.credential;
        out.push({
          leafIndex: i / 2,
          identity: c.credentialType === 'basic' ? utf8d.decode(c.identity) : '(x509)',
          signatureKey: toBase64(node.leaf.signaturePublicKey),
        });
      }
    });
    return out;
  }

  verificationCode() {
    return this.state ? verificationCode(this.state.keySchedule.epochAuthenticator) : null;
  }

  /** Our own SFrame sender key for the current epoch: {kid, baseKey}. */
  senderKey() {
    if (!this.state) return null;
    return { kid: mlsKid(this.leafIndex, this.state.groupContext.epoch), baseKey: this.baseKey };
  }
}
