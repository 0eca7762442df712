// client/vendor/ is written by tools/vendor-mls.mjs from the locked ts-mls; its MANIFEST
// lists every file with its SHA-256. This checks the committed copy against the MANIFEST
// (no npm needed): nothing edited by hand, nothing added or missing. (`node
// tools/vendor-mls.mjs --check` compares with the locked packages themselves after
// `npm ci` in tools/mls-vendor.) Run: node --test tests/client/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const vendor = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client/vendor');

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(path.relative(vendor, p).split(path.sep).join('/'));
  }
  return out;
}

test('client/vendor matches its MANIFEST, file for file', () => {
  const manifest = fs.readFileSync(path.join(vendor, 'MANIFEST'), 'utf8');
  assert.match(manifest, /^package ts-mls@1\.6\.4 \(MIT\)$/m);
  const listed = new Map();
  for (const line of manifest.split('\n')) {
    const m = line.match(/^([0-9a-f]{64}) {2}(.+)$/);
    if (m) listed.set(m[2], m[1]);
  }
  const files = walk(vendor).filter((f) => f !== 'MANIFEST').sort();
  assert.deepEqual(files, [...listed.keys()].sort());
  for (const f of files) {
    const sum = createHash('sha256').update(fs.readFileSync(path.join(vendor, f))).digest('hex');
    assert.equal(sum, listed.get(f), `client/vendor/${f} differs from the MANIFEST`);
  }
});
