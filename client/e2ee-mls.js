// e2ee-mls.js — E2EE with MLS group keys (docs/protocol.md §6) for hisoka.js: the same
// media plumbing as e2ee.js (transforms, worker, stats), with keys from an MLS group whose
// delivery service and external sender is the server, instead of round 1's pairwise keys.
//
//   const e2ee = await E2EEMls.create({ sendBinary, onRoster });
//   connect with {e2ee: true, e2ee_protocol: "mls"}; on the offer: e2ee.setSelf(connection_id)
//   (this sends our key package); every binary message: e2ee.onKeyMessage(bytes).
//
// The roster, the verification code and the banners come from the group (mls-roster.js);
// notify's member list is ignored: addMember/removeMember do nothing here.

import { E2EE } from './e2ee.js';
import { MlsMember } from './mls.js';
import { RosterWatch } from './mls-roster.js';

export class E2EEMls extends E2EE {
  /**
   * create({sendBinary, onRoster?, workerUrl?, worker?, memberOptions?})
   *   sendBinary(Uint8Array): send one binary WebSocket message.
   *   onRoster(update): RosterWatch's update after every epoch ({epoch, code, added,
   *   removed, credentialChanged, banner}) plus roster; and {removed: true} when this
   *   member was removed from the group.
   */
  static async create({ sendBinary, onRoster = () => {}, workerUrl, worker, memberOptions = {} } = {}) {
    if (typeof sendBinary !== 'function') throw new TypeError('sendBinary is required');
    const w = worker ?? new Worker(workerUrl ?? new URL('./e2ee-worker.js', import.meta.url), { type: 'module' });
    return new E2EEMls(w, sendBinary, onRoster, memberOptions);
  }

  constructor(worker, sendBinary, onRoster, memberOptions) {
    super(null, worker, () => {}, 0);
    this._sendBinary = sendBinary;
    this._onRoster = onRoster;
    this._memberOptions = memberOptions;
    this.mls = null;
    this.rosterWatch = null;
    this.lastUpdate = null;
  }

  /** Our connection id (from the offer): makes the MLS member and sends its key package. */
  setSelf(connectionId) {
    super.setSelf(connectionId);
    this.rosterWatch = new RosterWatch({ self: connectionId });
    this.mls = new MlsMember({
      ...this._memberOptions,
      connectionId,
      send: (bytes) => this._sendBinary(bytes),
      onEpoch: (info) => this._serial(() => this._installEpoch(info)),
      onEvent: (name, detail) => {
        if (name === 'removed' || name === 'invalid') this._serial(() => this._request({ type: 'mls-clear' }));
        if (name === 'removed') this._onRoster({ removed: true });
        if (this._memberOptions.onEvent) this._memberOptions.onEvent(name, detail);
      },
    });
    return this.mls.start();
  }

  async _installEpoch(info) {
    const leaves = Object.fromEntries(info.roster.map((r) => [r.identity, r.leafIndex]));
    await this._request({
      type: 'mls-epoch',
      epoch: info.epoch,
      baseKey: info.baseKey,
      leafIndex: info.leafIndex,
      leaves,
    });
    const update = { ...this.rosterWatch.update(info), roster: info.roster };
    this.lastUpdate = update;
    // Frames that arrived before this epoch's keys were dropped: ask for key frames.
    await this.requestKeyFrames();
    this._onRoster(update);
  }

  /** A binary message from the server: MLS envelopes go to the group; anything else is refused. */
  onKeyMessage(bytes) {
    const b = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    if (!this.mls || b.length < 1 || b[0] < 0x10 || b[0] > 0x1f) {
      this.keyMessagesRejected++;
      return Promise.resolve(false);
    }
    return this.mls.receive(b).then(() => true);
  }

  addMember() {
    return Promise.resolve();
  }

  removeMember() {
    return Promise.resolve();
  }

  /** The group's members (never the server's list): [{connectionId, leafIndex, signatureKey}]. */
  members() {
    if (!this.mls) return [];
    return this.mls.roster().map((r) => ({ connectionId: r.identity, leafIndex: r.leafIndex, signatureKey: r.signatureKey }));
  }

  /** The verification code of the current epoch (the same on every screen), or null. */
  verificationCode() {
    return this.mls ? this.mls.verificationCode() : null;
  }

  safetyNumber() {
    return this.verificationCode();
  }

  get mySafetyNumber() {
    return this.verificationCode();
  }

  async stats() {
    const r = await this._request({ type: 'stats' });
    return { ...r.stats, encrypted: r.encrypted, dropped: r.dropped, mls: r.mls ?? null };
  }
}
