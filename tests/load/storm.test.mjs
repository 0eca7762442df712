// docs/threats.md 13: NACK and PLI storms. Three subscribers each flood the server with 2,000
// RTCP feedback packets a second (NACKs for the last 16 packets of every stream, PLIs)
// while media flows: the server answers NACKs from its cache, throttles the PLIs it
// passes to the publisher, and everyone still gets every packet, unaltered.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { delta, scrape } from '../lib/metrics.mjs';
import { ROOT, startServer } from '../lib/server.mjs';

const LOAD_BIN = process.env.HISOKA_LOAD_BIN || path.join(ROOT, 'build/hisoka-load');

test('abuse 13: NACK and PLI storms from subscribers', async () => {
  const server = await startServer({ e2ee: 'true', log_level: 'warn' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-storm-'));
  const out = path.join(dir, 'result.json');
  try {
    const before = await scrape(server);
    const started = Date.now();
    const r = await new Promise((resolve) => {
      const child = spawn(LOAD_BIN, ['--url', server.url, '--publishers', '1', '--subscribers', '3',
        '--duration', '5', '--sample', '2', '--feedback-storm', '2000', '--json', out],
      { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
      child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
    });
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    const d = delta(before, await scrape(server));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    console.log(`# storm: ${result.feedback_sent} feedback packets sent; server: NACKed seqs ` +
      `${d.hisoka_nacks_received_total}, retransmissions ${d.hisoka_retransmissions_total}, ` +
      `PLIs received ${d['hisoka_plis_total{direction="received"}']}, PLIs sent ` +
      `${d['hisoka_plis_total{direction="sent"}']}, throttled ${d.hisoka_plis_throttled_total}; ` +
      `misses ${d.hisoka_retransmission_misses_total}, rate-limited ${d.hisoka_nacks_rate_limited_total}, media loss ${result.loss_pct}%`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(result.feedback_sent > 10000, 'the storm happened');
    assert.equal(result.integrity_failures, 0);
    assert.equal(result.peers_failed, 0);
    assert.ok(result.loss_pct < 1, `loss ${result.loss_pct}%`);
    assert.ok(d.hisoka_nacks_received_total > 10000, 'NACKs reached the server');
    assert.ok(d.hisoka_retransmissions_total > 0, 'answered from the cache');
    // ...but at most max_nacks_per_second (500) per subscriber and second.
    assert.ok(d.hisoka_retransmissions_total <= 3 * 500 * seconds,
      `retransmissions ${d.hisoka_retransmissions_total} bounded by the NACK rate limit`);
    assert.ok(d.hisoka_nacks_rate_limited_total > 100000, 'the rest were refused and counted');
    // PLIs to the publisher: at most one per 300 ms per stream, however many arrive.
    assert.ok(d['hisoka_plis_total{direction="sent"}'] <= 6 / 0.3 + 10,
      `PLIs passed on: ${d['hisoka_plis_total{direction="sent"}']}`);
    assert.ok(d.hisoka_plis_throttled_total > 1000, 'PLIs were throttled');
    assert.ok(server.alive());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
});
