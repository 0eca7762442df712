// mls-roster.js — what the demo page shows of an MLS group (issue 14, scope 4), kept
// free of the DOM so that Node tests can drive it.
//
// RosterWatch.update(info) takes MlsMember's onEpoch info ({epoch, roster, code}) and
// returns what changed since the previous epoch, judged only from the group state:
//   added / removed      identities (connection ids) that entered or left the leaves
//   credentialChanged    identities seen earlier in this session with another signature
//                        key: the same name, a different key holder (a loud warning)
//   duplicates           identities held by more than one leaf (a loud warning; the
//                        server refuses such commits, a member cannot rely on that)
//   banner               one line for a banner that stays until dismissed, or null when
//                        nothing changed (the first epoch of a member that just joined
//                        lists everyone)
// The verification code changes with every epoch; the page shows it next to the roster.

export class RosterWatch {
  constructor({ self = null } = {}) {
    this.self = self; // our own connection id, left out of "added" on our first epoch
    this.keys = new Map(); // identity -> signature key (base64), every one seen this session
    this.members = new Set();
    this.epoch = null;
  }

  update({ epoch, roster, code }) {
    const now = new Set(roster.map((r) => r.identity));
    const seen = new Set();
    const duplicates = [];
    for (const r of roster) {
      if (seen.has(r.identity) && !duplicates.includes(r.identity)) duplicates.push(r.identity);
      seen.add(r.identity);
    }
    const first = this.epoch === null;
    const added = roster.map((r) => r.identity).filter((id) => !this.members.has(id) && !(first && id === this.self));
    const removed = [...this.members].filter((id) => !now.has(id));
    const credentialChanged = [];
    for (const r of roster) {
      const known = this.keys.get(r.identity);
      if (known !== undefined && known !== r.signatureKey) credentialChanged.push(r.identity);
      this.keys.set(r.identity, r.signatureKey);
    }
    this.members = now;
    this.epoch = epoch;
    const parts = [];
    if (duplicates.length) parts.push(`SAME NAME ON SEVERAL MEMBERS: ${duplicates.join(', ')}`);
    if (credentialChanged.length) parts.push(`KEY CHANGED for ${credentialChanged.join(', ')}`);
    if (added.length) parts.push(`${first ? 'in the group' : 'joined'}: ${added.join(', ')}`);
    if (removed.length) parts.push(`left: ${removed.join(', ')}`);
    const banner = parts.length ? `${parts.join('; ')} — verification code now ${code}` : null;
    return { epoch, code, added, removed, credentialChanged, duplicates, banner };
  }
}
