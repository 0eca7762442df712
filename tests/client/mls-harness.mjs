// Shared by the MLS tests in tests/client: builds tests/client/mls-ds-driver.c (the C
// delivery service behind a line protocol) and runs members against it in one process
// with a fake clock for the DS. Not a test file itself.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MlsMember } from '../../client/mls.js';
import { E2EEMls } from '../../client/e2ee-mls.js';
import { FakeWorker } from './fake-worker.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let buildDir;
let driverPath;

/** Builds the driver with cc (call from a before hook). */
export function buildDriver() {
  buildDir = mkdtempSync(path.join(tmpdir(), 'hisoka-mls-'));
  driverPath = path.join(buildDir, 'mls-ds-driver');
  execFileSync('cc', [
    '-I.', '-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror', '-O1', '-g',
    '-o', driverPath, 'tests/client/mls-ds-driver.c', 'server/signal/mls_ds.c',
    'server/proto/mls_frame.c', 'common/id.c', 'common/error.c', '-lcrypto',
  ], { cwd: root, stdio: 'inherit' });
}

/** Removes the driver (call from an after hook). */
export function removeDriver() {
  rmSync(buildDir, { recursive: true, force: true });
}

export const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function connId(n) {
  // 26 Crockford characters, first one 0-7.
  return ('0' + String(n).padStart(3, '0') + 'ABCDEFGHJKMNPQRSTVWXYZ').slice(0, 26);
}

class Driver {
  constructor(args = []) {
    this.proc = spawn(driverPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = readline.createInterface({ input: this.proc.stdout });
    this.waiting = [];
    this.buffer = [];
    this.lines.on('line', (l) => {
      this.buffer.push(l);
      if (l.startsWith('done ')) {
        const out = this.buffer;
        this.buffer = [];
        this.waiting.shift()(out);
      }
    });
  }

  cmd(line) {
    return new Promise((resolve) => {
      this.waiting.push((out) => {
        const res = { sends: [], closes: [], done: null };
        for (const l of out) {
          const [kind, a, ...rest] = l.split(' ');
          if (kind === 'send') res.sends.push({ to: a, bytes: unhex(rest[0]) });
          else if (kind === 'close') res.closes.push({ id: a, reason: rest[0] });
          else res.done = { value: Number(a), reason: rest.join(' ') };
        }
        resolve(res);
      });
      this.proc.stdin.write(line + '\n');
    });
  }

  close() {
    this.proc.stdin.end();
  }
}

// A channel: members, the DS, and a fake clock. Messages are delivered in order.
/** Member options the tests use: a fast first commit, 20 ms per rank. */
export const FAST_COMMITS = { commitDelayMs: 2, rankDelayMs: 20 };

function plainMember(id, send, entry) {
  const member = new MlsMember({
    connectionId: id,
    send,
    onEpoch: (e) => entry.epochs.push(e),
    onEvent: (name, detail) => entry.events.push([name, detail]),
    ...FAST_COMMITS,
  });
  return { member, start: () => member.start(), receive: (b) => member.receive(b), idle: () => member.idle() };
}

export class Channel {
  constructor(driverArgs) {
    this.ds = new Driver(driverArgs);
    this.now = 1000;
    this.members = new Map(); // id -> {member, outbox, epochs, muted}
    this.closed = [];
    this.log = [];
  }

  async deliver(res) {
    for (const c of res.closes) {
      this.closed.push(c);
      const m = this.members.get(c.id);
      if (m) m.closed = c.reason;
    }
    for (const s of res.sends) {
      this.log.push({ to: s.to, type: s.bytes[0] });
      const m = this.members.get(s.to);
      if (m && !m.muted && !m.closed) m.receive(s.bytes);
    }
  }

  // make(id, send, entry) -> {member (an MlsMember), start(), receive(bytes), idle()}:
  // a plain MlsMember unless a test wraps one (e2ee-mls.test.mjs).
  async join(id, { muted = false, make = null } = {}) {
    const entry = { outbox: [], epochs: [], muted, events: [] };
    const send = (b) => entry.outbox.push(b);
    Object.assign(entry, make ? await make(id, send, entry) : plainMember(id, send, entry));
    this.members.set(id, entry);
    const r = await this.ds.cmd(`join ${id} ${this.now}`);
    assert.equal(r.done.value, 0, `join ${id}`);
    await this.deliver(r);
    if (!muted) await entry.start();
    await this.settle();
    return entry;
  }

  async leave(id) {
    const entry = this.members.get(id);
    this.members.delete(id);
    entry.closed = 'left';
    await this.deliver(await this.ds.cmd(`leave ${id} ${this.now}`));
    await this.settle();
  }

  async tick(ms) {
    this.now += ms;
    await this.deliver(await this.ds.cmd(`tick ${this.now}`));
    await this.settle();
  }

  // Runs until no member has anything to send for a few rounds.
  async settle(quietRounds = 3) {
    let quiet = 0;
    while (quiet < quietRounds) {
      await Promise.all([...this.members.values()].map((m) => m.idle()));
      await sleep(5);
      let sent = false;
      for (const [id, m] of this.members) {
        while (m.outbox.length) {
          const bytes = m.outbox.shift();
          if (m.muted || m.closed) continue;
          sent = true;
          this.now += 1;
          const r = await this.ds.cmd(`recv ${id} ${this.now} ${hex(bytes)}`);
          m.lastResult = r.done;
          await this.deliver(r);
        }
      }
      quiet = sent ? 0 : quiet + 1;
    }
  }

  async dsEpoch() {
    const r = await this.ds.cmd('epoch');
    return { epoch: BigInt(r.done.value), exists: r.done.reason === '1' };
  }

  async dsLeaf(id) {
    return (await this.ds.cmd(`leaf ${id}`)).done.value;
  }

  active() {
    return [...this.members.entries()].filter(([, m]) => !m.muted && !m.closed);
  }

  close() {
    this.ds.close();
  }
}

export function assertAgree(ch, expectedIds) {
  const active = ch.active();
  const first = active[0][1].member;
  assert.ok(first.state, 'first member is in a group');
  const ids = first.roster().map((r) => r.identity).sort();
  assert.deepEqual(ids, [...expectedIds].sort());
  for (const [id, m] of active) {
    const mm = m.member;
    assert.ok(mm.state, `${id} is in the group`);
    assert.equal(mm.epoch, first.epoch, `${id} epoch`);
    assert.equal(mm.verificationCode(), first.verificationCode(), `${id} code`);
    assert.deepEqual(mm.baseKey, first.baseKey, `${id} base key`);
    assert.deepEqual(mm.roster(), first.roster(), `${id} roster`);
    const own = mm.roster().find((r) => r.identity === id);
    assert.equal(own.leafIndex, mm.leafIndex);
  }
  return first;
}

/** A Channel.join `make` for client/e2ee-mls.js members with an in-process worker:
 * entry.e2ee, entry.core (the worker's FrameCrypto), entry.updates (roster updates). */
export async function makeE2ee(id, send, entry) {
  const worker = new FakeWorker();
  entry.updates = [];
  const e2ee = await E2EEMls.create({ worker, sendBinary: send, onRoster: (u) => entry.updates.push(u), memberOptions: FAST_COMMITS });
  entry.e2ee = e2ee;
  entry.core = worker.core;
  return {
    get member() {
      return e2ee.mls;
    },
    start: () => e2ee.setSelf(id),
    receive: (b) => e2ee.onKeyMessage(Uint8Array.from(b).buffer),
    idle: async () => {
      if (e2ee.mls) await e2ee.mls.idle();
      await e2ee._queue;
    },
  };
}
