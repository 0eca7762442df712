#!/usr/bin/env node
// Runs ts-mls's own RFC 9420 test-vector tests (test/test-vectors/*.test.ts and
// test_vectors/*.json of a ts-mls source checkout) against the package hisoka ships:
// tools/mls-vendor/node_modules/ts-mls (the locked version, the one copied to client/vendor),
// for one cipher suite, with Node's own test runner instead of vitest.
//
// Usage: node tools/ts-mls-vectors.mjs <ts-mls checkout> [cipher suite, default 1]
// e.g.   git -C <ts-mls clone> archive v1.6.2 test test_vectors | tar x -C /tmp/tsv
//        node tools/ts-mls-vectors.mjs /tmp/tsv 1
//
// How: a module hook maps "../../src/X.js" to the package's dist/src/X.js, serves JSON as
// a default export, strips TypeScript types (node:module stripTypeScriptTypes) and turns
// named imports into namespace imports (the test files import types and values alike);
// `test`/`expect` are small shims over node:test and node:assert. Vectors of other cipher
// suites are skipped.
import { register } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const checkout = path.resolve(process.argv[2] || '');
const suite = Number(process.argv[3] || 1);
if (!fs.existsSync(path.join(checkout, 'test/test-vectors'))) {
  console.error('usage: node tools/ts-mls-vectors.mjs <ts-mls checkout with test/ and test_vectors/> [suite]');
  process.exit(2);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = path.join(root, 'tools/mls-vendor/node_modules/ts-mls');

const hooks = `
import fs from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
const PKG = ${JSON.stringify(pathToFileURL(pkg + '/').href)};
export async function resolve(spec, ctx, next) {
  const m = spec.match(/^(?:\\.\\.\\/)+src\\/(.*)$/);
  if (m && ctx.parentURL && ctx.parentURL.includes('/test/')) return { url: new URL('dist/src/' + m[1], PKG).href, shortCircuit: true };
  if (spec.startsWith('@noble/')) return next(spec, { ...ctx, parentURL: new URL('package.json', PKG).href });
  if (spec.startsWith('.') && spec.endsWith('.js') && ctx.parentURL && ctx.parentURL.includes('/test/')) {
    const ts = new URL(spec.slice(0, -3) + '.ts', ctx.parentURL);
    if (fs.existsSync(fileURLToPath(ts))) return { url: ts.href, shortCircuit: true };
  }
  return next(spec, ctx);
}
export async function load(url, ctx, next) {
  if (url.endsWith('.json')) {
    return { format: 'module', source: 'export default ' + fs.readFileSync(fileURLToPath(url), 'utf8'), shortCircuit: true };
  }
  if (url.endsWith('.ts')) {
    let src = fs.readFileSync(fileURLToPath(url), 'utf8');
    let n = 0;
    src = src.replace(/import\\s+(type\\s+)?\\{([^}]*)\\}\\s+from\\s+("[^"]+")/g, (all, isType, names, spec) => {
      if (isType) return '';
      const id = '__m' + n++;
      const list = names.split(',').map((s) => s.trim()).filter(Boolean)
        .filter((s) => !s.startsWith('type ')).map((s) => s.replace(/\\s+as\\s+/, ': '));
      return 'import * as ' + id + ' from ' + spec + '; const { ' + list.join(', ') + ' } = ' + id;
    });
    src = stripTypeScriptTypes(src, { mode: 'strip' });
    return { format: 'module', source: src, shortCircuit: true };
  }
  return next(url, ctx);
}
`;
register('data:text/javascript,' + encodeURIComponent(hooks));

const { test: nodeTest } = await import('node:test');
const assert = (await import('node:assert/strict')).default;

function expect(actual) {
  const api = {
    toStrictEqual: (e) => assert.deepStrictEqual(actual, e),
    toEqual: (e) => assert.deepEqual(actual, e),
    toBe: (e) => assert.ok(Object.is(actual, e), `expected ${e}, got ${actual}`),
    toBeNull: () => assert.equal(actual, null),
    toBeDefined: () => assert.notEqual(actual, undefined),
    toBeUndefined: () => assert.equal(actual, undefined),
    toThrow: () => assert.throws(actual),
  };
  api.rejects = { toThrow: () => assert.rejects(actual) };
  api.not = { toBe: (e) => assert.ok(!Object.is(actual, e)), toStrictEqual: (e) => assert.notDeepStrictEqual(actual, e) };
  return api;
}

const counts = { run: 0, skipped: 0 };
function each(rows) {
  return (name, fn) => {
    rows.forEach((row, i) => {
      const args = Array.isArray(row) ? row : [row];
      const x = args.find((a) => a && typeof a === 'object' && 'cipher_suite' in a);
      if (x && x.cipher_suite !== suite) {
        counts.skipped++;
        return;
      }
      counts.run++;
      nodeTest(name.replace('%i', String(i)).replace('%s', String(args[0])), () => fn(...args));
    });
  };
}
const testFn = (name, fn) => nodeTest(name, fn);
testFn.each = each;
testFn.concurrent = testFn;
testFn.skip = () => {};
globalThis.test = testFn;
globalThis.it = testFn;
globalThis.describe = (name, fn) => fn();
globalThis.expect = expect;

const dir = path.join(checkout, 'test/test-vectors');
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort()) {
  await import(pathToFileURL(path.join(dir, f)).href);
}
console.log(`# ts-mls vectors: ${counts.run} cases for cipher suite ${suite} (${counts.skipped} of other suites skipped)`);
