// aiortc 1.4.0 (Debian python3-aiortc) as a Sora client, through aiortc_client.py. A
// sendrecv member stays in the channel while five newcomers join, publish and leave, one
// at a time, two at once, and one joining as another leaves. A must decode each
// newcomer's picture (which shows the newcomer's number) under the newcomer's connection
// id, must never receive a packet before it has sent the answer that accepts that
// packet's SSRC (checked on its capture of every RTP packet), and must still be
// connected at the end.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';

import { ROOT, startServer } from '../lib/server.mjs';

const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(ROOT, 'tests/interop/aiortc_client.py');
const CHANNEL = 'aiortc';
const FRAMES = 10; // decoded frames that prove a newcomer is seen
const STEP_TIMEOUT = 8000;

// One aiortc_client.py process; its stdout JSON lines are kept in events.
class Peer {
  constructor(url, { role, identity, capture }) {
    this.identity = identity;
    this.role = role;
    this.events = [];
    this.waiters = [];
    this.stderr = '';
    const args = [CLIENT, '--url', url, '--channel', CHANNEL, '--role', role,
      '--identity', String(identity), '--max-seconds', '55'];
    if (capture) args.push('--capture', capture);
    this.child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        e = { event: 'unparsed', line };
      }
      e.received_at = Date.now();
      this.events.push(e);
      this._wake();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => {
      this.exitCode = code ?? signal;
      this._wake();
      resolve();
    }));
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  // The first event matching pred, waiting up to timeout ms; throws on timeout or exit.
  async waitFor(pred, what, timeout = STEP_TIMEOUT) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (this.exitCode !== undefined) {
        throw new Error(`${this.name()} exited (${this.exitCode}) while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name()}: timeout waiting for ${what}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  // Resolves once every re-offer is answered and none came for quietMs.
  async settled(quietMs = 400, timeout = 4000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const reoffers = this.events.filter((e) => e.event === 're-offer').length;
      const reanswers = this.events.filter((e) => e.event === 'answer' && e.type === 're-answer').length;
      const last = this.events.findLast((e) => e.event === 're-offer' || e.event === 'answer');
      if (reoffers === reanswers && Date.now() - last.received_at >= quietMs) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.name()}: ${reoffers} re-offers, ${reanswers} re-answers after ${timeout} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  name() { return `aiortc #${this.identity} (${this.role}${this.id ? ` ${this.id}` : ''})`; }

  async joined() {
    this.id = (await this.waitFor((e) => e.event === 'offer', 'offer')).connection_id;
    await this.waitFor((e) => e.event === 'state' && e.state === 'connected', 'ICE+DTLS connected');
    return this.id;
  }

  // Sends "leave" and returns the summary the client prints before it exits.
  async leave() {
    if (this.exitCode === undefined) this.child.stdin.end('leave\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 6000);
    await this.exited;
    clearTimeout(timer);
    return this.events.find((e) => e.event === 'summary');
  }
}

let server;
let capture;
let A;
const newcomers = [];
const stepErrors = []; // what timed out while the scenario ran (it goes on regardless)
let summaryA;
let serverAliveAtEnd;

// A received at least `frames` frames showing n's number under n's connection id (the
// client reports the 1st, the 10th and every 15th).
function decodedBy(peer, n, frames = FRAMES) {
  return peer.waitFor((e) => e.event === 'decoded' && e.connection_id === n.id
    && e.identity === n.identity && e.frames >= frames, `${frames} frames of ${n.name()}`);
}

before(async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import aiortc, websockets, av; print(aiortc.__version__)']);
  assert.equal(probe.status, 0,
    `Debian python3-aiortc and python3-websockets are needed (tools/deps.sh test): ${probe.stderr}`);
  server = await startServer();
  capture = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-aiortc-')), 'a-packets.jsonl');
  const started = Date.now();
  A = new Peer(server.url, { role: 'sendrecv', identity: 1, capture });
  await A.joined();

  const spawnNewcomer = (identity, role) => {
    const n = new Peer(server.url, { role, identity });
    newcomers.push(n);
    return n;
  };
  const join = async (identity, role) => {
    const n = spawnNewcomer(identity, role);
    await n.joined();
    return n;
  };
  // Runs a step; a failure is recorded and the scenario goes on, so that every assertion
  // below reports on the whole run.
  const step = async (what, fn) => {
    try {
      await fn();
    } catch (e) {
      stepErrors.push(`${what}: ${e.message}`);
    }
  };
  const leaveAndSeen = async (...peers) => {
    await Promise.all(peers.map((p) => p.leave()));
    for (const p of peers) {
      await step(`A told ${p.name()} left`, () => A.waitFor((e) => e.event === 'notify'
        && e.event_type === 'connection.destroyed' && e.connection_id === p.id, 'connection.destroyed'));
    }
  };

  // 1: one newcomer, alone with A.
  let n1;
  await step('join #11', async () => { n1 = await join(11, 'sendrecv'); await decodedBy(A, n1); });
  if (n1) await leaveAndSeen(n1);
  // 2, 3: two overlap; the first leaves while the second stays.
  let n2;
  let n3;
  await step('join #12', async () => { n2 = await join(12, 'sendonly'); await decodedBy(A, n2); });
  await step('join #13', async () => { n3 = await join(13, 'sendrecv'); await decodedBy(A, n3); });
  // A still decodes #12 after the re-offer that added #13 (15 more frames).
  await step('A keeps #12 while #13 joins', async () => {
    const last = A.events.findLast((e) => e.event === 'decoded' && e.connection_id === n2.id);
    await decodedBy(A, n2, last.frames + 15);
  });
  if (n2) await leaveAndSeen(n2);
  // 4: joins as 3 leaves: 3 leaves when 4 has its offer (which still lists 3), so 3's
  // leave and 4's arrival reach A in consecutive or shared re-offers.
  let n4;
  await step('join #14 as #13 leaves', async () => {
    n4 = spawnNewcomer(14, 'sendonly');
    await n4.waitFor((e) => e.event === 'offer', 'offer');
    const leaving = n3 ? leaveAndSeen(n3) : Promise.resolve();
    await n4.joined();
    await leaving;
    await decodedBy(A, n4);
  });
  // 5: joins while 4 is there; then both leave at once.
  let n5;
  await step('join #15', async () => { n5 = await join(15, 'sendrecv'); await decodedBy(A, n5); });
  await leaveAndSeen(...[n4, n5].filter(Boolean));
  // The re-offers for the last leaves answered, then A reports and leaves.
  await step('A answers the last re-offers', () => A.settled());
  serverAliveAtEnd = server.alive();
  summaryA = await A.leave();
  for (const n of newcomers) if (n.exitCode === undefined) await n.leave();
  console.log(`aiortc scenario: ${Date.now() - started} ms, step failures: ${stepErrors.length}`);
}, { timeout: 60000 });

after(async () => {
  for (const p of [A, ...newcomers]) if (p && p.exitCode === undefined) p.child.kill('SIGKILL');
  // HISOKA_AIORTC_LOGS=DIR keeps every client's events and stderr, A's capture and the
  // server's log there.
  const keep = process.env.HISOKA_AIORTC_LOGS;
  if (keep) {
    fs.mkdirSync(keep, { recursive: true });
    for (const p of [A, ...newcomers].filter(Boolean)) {
      const base = path.join(keep, `aiortc-${p.identity}`);
      fs.writeFileSync(`${base}.jsonl`, p.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      fs.writeFileSync(`${base}.stderr`, p.stderr);
    }
    if (capture && fs.existsSync(capture)) fs.copyFileSync(capture, path.join(keep, 'a-packets.jsonl'));
    if (server) fs.writeFileSync(path.join(keep, 'hisoka.log'), server.log);
  }
  if (server) await server.stop();
  if (capture) fs.rmSync(path.dirname(capture), { recursive: true, force: true });
});

function diagnostics(peer) {
  const lines = peer.events.filter((e) => e.event !== 'summary' && e.event !== 'decoded')
    .map((e) => JSON.stringify(e).slice(0, 400));
  return `${peer.name()} events:\n${lines.join('\n')}\nstderr:\n${peer.stderr.slice(-2000)}`;
}

test('A decodes every newcomer under its connection id, showing its number', () => {
  assert.ok(summaryA, `A printed no summary\n${diagnostics(A)}`);
  assert.equal(newcomers.length, 5, stepErrors.join('\n'));
  const problems = [...stepErrors];
  for (const n of newcomers) {
    const r = summaryA.received[n.id];
    const seen = r ? r.identities[String(n.identity)] || 0 : 0;
    if (seen < FRAMES) {
      problems.push(`${n.name()}: A decoded ${seen} frames showing #${n.identity} under ${n.id} (${JSON.stringify(r)})`);
    }
    // Bars whose markers do not read back: a few are tolerable, a garbled track is not.
    if (r && r.undecodable * 2 > r.frames) problems.push(`${n.name()}: most frames unreadable (${JSON.stringify(r)})`);
  }
  // Every frame A attributes to a connection shows that connection's number.
  const byId = new Map(newcomers.map((n) => [n.id, n.identity]));
  for (const [id, r] of Object.entries(summaryA.received)) {
    const expected = byId.get(id);
    const wrong = Object.entries(r.identities).filter(([k]) => Number(k) !== expected);
    if (wrong.length) problems.push(`frames under ${id} (#${expected}) show ${JSON.stringify(wrong)}`);
  }
  assert.deepEqual(problems, [], `${problems.join('\n')}\n${diagnostics(A)}`);
});

// A's capture checked against the answers A sent: each packet is "before_answer" when no
// answer sent before it accepted its SSRC, "after_declined" when an earlier one did but
// the last one sent does not.
function classifyPackets() {
  const answers = summaryA.answers;
  const packets = fs.readFileSync(capture, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ever = new Set();
  const bad = [];
  let i = -1;
  for (const p of packets) {
    while (i + 1 < answers.length && answers[i + 1].t <= p.t) {
      i++;
      for (const ssrc of answers[i].accepted_ssrcs) ever.add(ssrc);
    }
    if (i < 0 || !answers[i].accepted_ssrcs.includes(p.ssrc)) {
      bad.push({ kind: ever.has(p.ssrc) ? 'after_declined' : 'before_answer', ...p,
        answers_sent: i + 1, publisher: summaryA.ssrc_owner[p.ssrc] ?? null });
    }
  }
  return { packets, bad };
}

function describe(bad, total) {
  const bySsrc = {};
  for (const v of bad) bySsrc[`${v.ssrc} (${v.publisher})`] = (bySsrc[`${v.ssrc} (${v.publisher})`] || 0) + 1;
  const answers = summaryA.answers.map((a) => ({ t: a.t, type: a.type, ssrcs: a.accepted_ssrcs }));
  return `${bad.length} of ${total} packets; per SSRC ${JSON.stringify(bySsrc)}; first: `
    + `${JSON.stringify(bad.slice(0, 3))}\nA's answers: ${JSON.stringify(answers)}`;
}

test('no packet reaches A before A sent the answer that accepts its SSRC (packet capture)', () => {
  assert.ok(summaryA, 'A printed no summary');
  const { packets, bad } = classifyPackets();
  // The capture saw every newcomer's media, so an empty list means something.
  const owners = new Set(packets.map((p) => summaryA.ssrc_owner[p.ssrc]));
  const missing = newcomers.filter((n) => !owners.has(n.id)).map((n) => n.name());
  assert.deepEqual(missing, [], `no packets captured from ${missing.join(', ')}`);
  const early = bad.filter((v) => v.kind === 'before_answer');
  assert.equal(early.length, 0, `packets before an answer accepting them: ${describe(early, packets.length)}`);
  // The client's own on-line check agrees.
  assert.deepEqual(summaryA.violations.filter((v) => v.kind === 'before_answer'), []);
});

// aiortc 1.4.0 matches transceivers by m-line index, so when hisoka recycles a rejected
// m-line under a new mid it answers that live section a=inactive. The server must send
// nothing there (and offers the track again in a new section, without recycling for this
// client from then on: test 1 checks A still decodes everyone).
test('A gets no packet on a section after its last answer declined it', (t) => {
  assert.ok(summaryA, 'A printed no summary');
  // Sections offered for sending (port not 0) that A's answer declined.
  const declined = summaryA.answers.flatMap((a, i) => a.sections
    .filter((s) => s.offer_port !== 0 && s.offer_direction === 'sendonly' && !s.accepted)
    .map((s) => `answer ${i + 1} (${a.type}): mid ${s.mid} of ${s.connection_id} answered ${s.answer_direction}`));
  if (declined.length) t.diagnostic(`A declined live sections: ${declined.join('; ')}`);
  const { packets, bad } = classifyPackets();
  const late = bad.filter((v) => v.kind === 'after_declined');
  assert.equal(late.length, 0, `packets after an answer declined them: ${describe(late, packets.length)}`);
});

test('A stays connected through every join and leave and answers every re-offer', () => {
  assert.ok(summaryA, 'A printed no summary');
  assert.equal(serverAliveAtEnd, true);
  assert.deepEqual(summaryA.errors, [], diagnostics(A));
  assert.equal(summaryA.ws_open_before_leave, true, JSON.stringify(summaryA.close));
  assert.equal(summaryA.pc_state_before_leave, 'connected');
  const reoffers = A.events.filter((e) => e.event === 're-offer' && e.t <= summaryA.t).length;
  const reanswers = summaryA.answers.filter((a) => a.type === 're-answer').length;
  assert.equal(reanswers, reoffers, diagnostics(A));
  for (const n of newcomers) {
    for (const kind of ['connection.created', 'connection.destroyed']) {
      assert.ok(summaryA.notifies.some((e) => e.event_type === kind && e.connection_id === n.id),
        `A got no ${kind} for ${n.name()}`);
    }
  }
  for (const n of newcomers) {
    const s = n.events.find((e) => e.event === 'summary');
    assert.ok(s, `${n.name()} printed no summary\n${diagnostics(n)}`);
    assert.deepEqual(s.errors, [], diagnostics(n));
  }
});
