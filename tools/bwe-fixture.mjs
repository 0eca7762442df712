// Turns a trace the server recorded (HISOKA_BWE_TRACE) into a fixture that
// tests/unit/test_bwe.c replays: one connection's lines, times from its first input,
// and the link changes ("m US KBPS") from the test's "# bwe-mark US KBPS" lines.
//   node tools/bwe-fixture.mjs TRACE CONNECTION_ID TEST_LOG FROM_S TO_S > fixture.bwe
// Only what falls between FROM_S and TO_S seconds (trace time) is kept, except that the
// packets fed back in that window are kept from when they were sent.
import fs from 'node:fs';

const [trace, id, testLog, fromS, toS] = process.argv.slice(2);
if (!toS) {
  console.error('usage: node tools/bwe-fixture.mjs TRACE CONNECTION_ID TEST_LOG FROM_S TO_S');
  process.exit(2);
}
const lines = fs.readFileSync(trace, 'utf8').split('\n')
  .filter((l) => l.startsWith(`${id} `)).map((l) => l.slice(id.length + 1).split(' '));
if (!lines.length) {
  console.error(`no lines of ${id} in ${trace}`);
  process.exit(1);
}
const timed = (f) => ['s', 'f', 'b', 'e'].includes(f[0]);
const t0 = BigInt(lines.find(timed)[1]);
const from = t0 + BigInt(Math.round(Number(fromS) * 1e6));
const to = t0 + BigInt(Math.round(Number(toS) * 1e6));
const marks = [...fs.readFileSync(testLog, 'utf8').matchAll(/bwe-mark (\d+) (\d+)/g)]
  .map((m) => [BigInt(m[1]), m[2]]).filter(([at]) => at >= from && at <= to);
// The window's inputs, and the sends its feedback refers to (a packet sent up to a second
// before the window and fed back in it must be known to the estimator). Times are made
// relative to the first line kept.
const start = from - 1000000n;
const out = [];
let now = t0;
for (const f of lines) {
  if (timed(f)) now = BigInt(f[1]);
  while (marks.length && marks[0][0] <= now) {
    const [at, kbps] = marks.shift();
    out.push(['m', at, kbps]);
  }
  const keep = f[0] === 's' ? now >= start && now <= to : now >= from && now <= to;
  if (keep) out.push(timed(f) ? [f[0], now, ...f.slice(2)] : f);
}
const first = out.find((f) => f[0] !== 'p' && f[0] !== 'r')[1];
const text = out.map((f) => (f[0] === 'p' || f[0] === 'r' ? f.join(' ')
  : [f[0], (f[1] - first).toString(), ...f.slice(2)].join(' ')));
process.stdout.write(`${text.join('\n')}\n`);
