// docs/threats.md 14 (config): a bad sora.conf stops hisoka before it listens, with exactly one
// line "FILE:LINE: key: reason" on stderr and exit code 2; the command line is checked.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { ROOT, freePort, run } from '../lib/server.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hisoka-config-'));
let serial = 0;
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// Writes lines (joined with "\n", newline at the end) to a new file; returns its path.
function confFile(lines) {
  serial += 1;
  const file = path.join(dir, `case-${serial}.conf`);
  fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  return file;
}

// Runs args and checks exit code 2 and a single error line FILE:LINE: key: reason.
async function expectConfigError(args, file, line, key) {
  const r = await run(args);
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.endsWith('\n'), 'ends with a newline');
  const lines = r.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `exactly one line: ${JSON.stringify(r.stderr)}`);
  const prefix = `${file}:${line}: ${key}: `;
  assert.ok(lines[0].startsWith(prefix), `${JSON.stringify(lines[0])} starts with ${JSON.stringify(prefix)}`);
  const reason = lines[0].slice(prefix.length);
  assert.ok(reason.trim().length > 0, 'a reason');
  return reason;
}

// Both --check-config FILE and --config FILE refuse the file the same way.
async function bothRefuse(file, line, key) {
  const reason = await expectConfigError(['--check-config', file], file, line, key);
  const reason2 = await expectConfigError(['--config', file], file, line, key);
  assert.equal(reason2, reason);
  return reason;
}

const VALID = ['# a valid file', 'listen_address = 127.0.0.1', 'e2ee = true', ''];

test('abuse 14: unknown key', async () => {
  const file = confFile([...VALID, 'bogus_key = 1']);
  const reason = await bothRefuse(file, 5, 'bogus_key');
  assert.match(reason, /unknown key/);
  // A misspelt key with spaces around it, and one without a value.
  await bothRefuse(confFile(['  e2e = true  ']), 1, 'e2e');
  await bothRefuse(confFile(['', 'max_conections = ']), 2, 'max_conections');
});

test('abuse 14: bad value', async () => {
  let reason = await bothRefuse(confFile([...VALID.slice(0, 2), 'e2ee = maybe']), 3, 'e2ee');
  assert.match(reason, /maybe/);
  await bothRefuse(confFile(['ping_interval = 5']), 1, 'ping_interval'); // no unit
  await bothRefuse(confFile(['ping_interval = 5 fortnights']), 1, 'ping_interval');
  await bothRefuse(confFile(['max_connections = ten']), 1, 'max_connections');
  await bothRefuse(confFile(['listen_address = 999.0.0.1']), 1, 'listen_address');
  await bothRefuse(confFile(['log_level = loud']), 1, 'log_level');
  await bothRefuse(confFile(['#', 'signaling_notify =']), 2, 'signaling_notify');
  reason = await bothRefuse(confFile(['no equals sign here']), 1, 'config');
  assert.match(reason, /key = value/);
});

test('abuse 14: out-of-range number', async () => {
  const reason = await bothRefuse(confFile(['', '', '', 'media_port = 70000']), 4, 'media_port');
  assert.match(reason, /out of range/);
  await bothRefuse(confFile(['signaling_port = 0']), 1, 'signaling_port');
  await bothRefuse(confFile(['api_port = -1']), 1, 'api_port');
  await bothRefuse(confFile(['max_connections = 99999999999999999999999']), 1, 'max_connections');
  await bothRefuse(confFile(['max_message_size = 17 MiB']), 1, 'max_message_size');
  await bothRefuse(confFile(['ping_interval = 500 ms']), 1, 'ping_interval');
  await bothRefuse(confFile(['max_missed_pongs = 0']), 1, 'max_missed_pongs');
  // Two ports that clash: the later line is named.
  await bothRefuse(confFile(['signaling_port = 6000', 'api_port = 6000']), 2, 'api_port');
});

test('abuse 14: missing file', async () => {
  const file = path.join(dir, 'does-not-exist.conf');
  const reason = await bothRefuse(file, 0, 'config');
  assert.match(reason, /No such file/);
  // A directory is not a file either.
  const r = await run(['--check-config', dir]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.ok(r.stderr.startsWith(`${dir}:0: config: `), r.stderr);
});

test('abuse 14: duplicate key', async () => {
  const file = confFile(['e2ee = true', 'max_connections = 10', '# again', 'e2ee = false']);
  const reason = await bothRefuse(file, 4, 'e2ee');
  assert.match(reason, /duplicate/);
  assert.match(reason, /line 1/);
});

test('abuse 14: hostile bytes (NUL, invalid UTF-8, a 100 KiB line)', async () => {
  const nul = path.join(dir, 'nul.conf');
  fs.writeFileSync(nul, 'e2ee = true\nlog_level = de\0bug\n');
  const r1 = await run(['--check-config', nul]);
  assert.equal(r1.code, 2);
  assert.ok(r1.stderr.startsWith(`${nul}:2: `), r1.stderr);
  const utf = path.join(dir, 'utf8.conf');
  fs.writeFileSync(utf, Buffer.from('demo_directory = \xff\xfe\n', 'latin1'));
  const r2 = await run(['--check-config', utf]);
  assert.equal(r2.code, 2);
  assert.ok(r2.stderr.startsWith(`${utf}:1: `), r2.stderr);
  const long = path.join(dir, 'long.conf');
  fs.writeFileSync(long, `# ${'x'.repeat(100 * 1024)}\n`);
  const r3 = await run(['--check-config', long]);
  assert.equal(r3.code, 2);
  assert.ok(r3.stderr.startsWith(`${long}:1: config: `), r3.stderr);
  for (const r of [r1, r2, r3]) assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('abuse 14: a valid file passes --check-config silently', async () => {
  const file = confFile([...VALID, 'max_message_size = 1 MiB', 'ping_interval = 2 s']);
  const r = await run(['--check-config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  const empty = confFile([]);
  const r2 = await run(['--check-config', empty]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout + r2.stderr, '');
});

test('abuse 14: sora.conf.example passes --check-config', async () => {
  const r = await run(['--check-config', path.join(ROOT, 'sora.conf.example')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
});

// True when something accepts TCP connections on 127.0.0.1:port.
function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

test('abuse 14: the daemon with a bad file exits 2 without listening', async () => {
  const signaling = await freePort();
  const api = await freePort();
  const file = confFile([
    'listen_address = 127.0.0.1', `signaling_port = ${signaling}`, `api_port = ${api}`,
    'media_port = 70000',
  ]);
  const started = Date.now();
  const r = await run(['--config', file]);
  assert.equal(r.code, 2);
  assert.ok(Date.now() - started < 5000, 'exits at once');
  assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: media_port: .+\n$`));
  assert.doesNotMatch(r.stdout + r.stderr, /started|listening/);
  assert.equal(await listening(signaling), false);
  assert.equal(await listening(api), false);
});

test('abuse 14: --version prints hisoka X.Y.Z and exits 0', async () => {
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^hisoka \d+\.\d+\.\d+\n$/);
  assert.equal(r.stderr, '');
});

test('abuse 14: --help exits 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: hisoka/);
  assert.match(r.stdout, /--check-config/);
  assert.equal(r.stderr, '');
});

test('abuse 14: an unknown argument exits 2', async () => {
  for (const args of [['--bogus'], ['-x'], ['extra'], ['--config'], ['--check-config'],
    ['--version', '--bogus']]) {
    const r = await run(args);
    // --version exits at once, before it reads the bad argument that follows it.
    if (args[0] === '--version') {
      assert.equal(r.code, 0);
      continue;
    }
    assert.equal(r.code, 2, `${args.join(' ')}: exit code`);
    assert.match(r.stderr, /unknown argument|usage/);
    assert.equal(r.stdout, '');
  }
});
