#!/usr/bin/env node
// Copies ts-mls and the modules it imports, as pinned by tools/mls-vendor/package-lock.json,
// into client/vendor/ as plain ES modules that a browser (and Node) can load with no build
// step and no import map (module workers have none):
//   - start at ts-mls/dist/src/index.js and follow every static and dynamic import;
//   - a bare specifier ("@hpke/core", "@noble/hashes/sha2.js") is resolved through the
//     package's "exports" (the "import" or "default" condition) and rewritten to a
//     relative path; a package that is not installed (an optional peer such as
//     @hpke/ml-kem, used only by cipher suites hisoka does not use) stays bare: it may
//     only be reached by a dynamic import, and then fails only if that suite is asked for;
//   - source maps and type declarations are left out; each package's LICENSE is copied;
//   - client/vendor/MANIFEST lists every file with its SHA-256, and the package versions.
//
// Usage: node tools/vendor-mls.mjs          (re)writes client/vendor/
//        node tools/vendor-mls.mjs --check  exits 1 when client/vendor/ differs
// Run `npm ci` in tools/mls-vendor first.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modules = path.join(root, 'tools/mls-vendor/node_modules');
const outDir = path.join(root, 'client/vendor');
const check = process.argv.includes('--check');

const importRe =
  /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"'\n]+)\2/g;

function packageOf(spec) {
  const parts = spec.split('/');
  const n = spec.startsWith('@') ? 2 : 1;
  return { name: parts.slice(0, n).join('/'), sub: parts.slice(n).join('/') };
}

function pickTarget(entry) {
  if (typeof entry === 'string') return entry;
  if (entry && typeof entry === 'object') {
    for (const c of ['import', 'browser', 'default']) {
      if (c in entry) {
        const t = pickTarget(entry[c]);
        if (t) return t;
      }
    }
  }
  return null;
}

// Returns the absolute file a bare specifier names, or null when its package is absent.
function resolveBare(spec) {
  const { name, sub } = packageOf(spec);
  const dir = path.join(modules, name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) return null;
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const key = sub ? './' + sub : '.';
  let target = null;
  if (pkg.exports) {
    if (typeof pkg.exports === 'string' || !Object.keys(pkg.exports)[0].startsWith('.')) {
      if (key === '.') target = pickTarget(pkg.exports);
    } else if (key in pkg.exports) {
      target = pickTarget(pkg.exports[key]);
    } else {
      for (const [pattern, value] of Object.entries(pkg.exports)) {
        const star = pattern.indexOf('*');
        if (star < 0) continue;
        const pre = pattern.slice(0, star), post = pattern.slice(star + 1);
        if (key.startsWith(pre) && key.endsWith(post) && key.length >= pre.length + post.length) {
          const t = pickTarget(value);
          if (t) target = t.replace('*', key.slice(pre.length, key.length - post.length));
          break;
        }
      }
    }
  } else {
    target = sub ? './' + sub : pkg.module || pkg.main || './index.js';
  }
  if (!target) throw new Error(`vendor-mls: ${spec} is not exported by ${name}`);
  return path.join(dir, target);
}

function outPathOf(file) {
  return path.join(outDir, path.relative(modules, file));
}

const files = new Map(); // absolute source -> rewritten text
const missing = new Set();
const queue = [path.join(modules, 'ts-mls/dist/src/index.js')];
while (queue.length) {
  const file = queue.pop();
  if (files.has(file)) continue;
  let text = fs.readFileSync(file, 'utf8');
  text = text.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  // Import-like text inside comments (JSDoc examples) is left alone.
  text = text.split('\n').map((line) => /^\s*(\*|\/\/|\/\*)/.test(line) ? line : line.replace(importRe, (all, lead, quote, spec) => {
    let target;
    if (spec.startsWith('.')) {
      target = path.resolve(path.dirname(file), spec);
    } else {
      target = resolveBare(spec);
      if (!target) {
        missing.add(spec);
        return all;
      }
    }
    if (!fs.existsSync(target)) throw new Error(`vendor-mls: ${file} imports missing ${spec}`);
    queue.push(target);
    let rel = path.relative(path.dirname(outPathOf(file)), outPathOf(target)).split(path.sep).join('/');
    if (!rel.startsWith('.')) rel = './' + rel;
    return lead + quote + rel + quote;
  })).join('\n');
  files.set(file, text);
}

const out = new Map(); // path relative to client/vendor -> contents
const packages = new Set();
for (const [file, text] of files) {
  const rel = path.relative(modules, file).split(path.sep).join('/');
  out.set(rel, text);
  packages.add(packageOf(rel).name);
}
const versions = [];
for (const name of [...packages].sort()) {
  const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
  versions.push(`${name}@${pkg.version} (${pkg.license})`);
  for (const lic of ['LICENSE', 'LICENSE.md', 'LICENSE.txt']) {
    const p = path.join(modules, name, lic);
    if (fs.existsSync(p)) out.set(`${name}/${lic}`, fs.readFileSync(p, 'utf8'));
  }
}
const sorted = [...out.keys()].sort();
let manifest =
  '# client/vendor: written by tools/vendor-mls.mjs from tools/mls-vendor/package-lock.json.\n' +
  '# Do not edit by hand; run the script again. Optional peers left unresolved (never loaded\n' +
  '# for the cipher suite hisoka uses): ' + ([...missing].sort().join(' ') || 'none') + '\n';
for (const v of versions) manifest += `package ${v}\n`;
for (const rel of sorted) {
  manifest += createHash('sha256').update(out.get(rel)).digest('hex') + '  ' + rel + '\n';
}
out.set('MANIFEST', manifest);

if (check) {
  const have = fs.existsSync(path.join(outDir, 'MANIFEST'))
    ? fs.readFileSync(path.join(outDir, 'MANIFEST'), 'utf8')
    : '';
  let bad = have !== manifest;
  for (const rel of sorted) {
    const p = path.join(outDir, rel);
    if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== out.get(rel)) {
      console.error(`vendor-mls: client/vendor/${rel} differs from the locked package`);
      bad = true;
    }
  }
  if (bad) process.exit(1);
  console.log(`vendor-mls: client/vendor matches (${sorted.length} files)`);
} else {
  fs.rmSync(outDir, { recursive: true, force: true });
  for (const [rel, text] of out) {
    const p = path.join(outDir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  console.log(`vendor-mls: wrote ${out.size} files to client/vendor (${versions.join(', ')})`);
}
