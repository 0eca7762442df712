// A strict parser of the Prometheus text exposition format (0.0.4) and helpers to
// scrape hisoka's /metrics and compare two scrapes.
import assert from 'node:assert/strict';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseLabels(text, where) {
  const labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    assert.ok(eq > i, `${where}: label without '='`);
    const name = text.slice(i, eq);
    assert.match(name, LABEL, `${where}: label name ${name}`);
    assert.equal(text[eq + 1], '"', `${where}: label value must be quoted`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      assert.ok(j < text.length, `${where}: unterminated label value`);
      const c = text[j];
      if (c === '\\') {
        const n = text[j + 1];
        assert.ok(n === '\\' || n === '"' || n === 'n', `${where}: bad escape \\${n}`);
        value += n === 'n' ? '\n' : n;
        j += 2;
      } else if (c === '"') {
        j++;
        break;
      } else {
        assert.notEqual(c, '\n', `${where}: newline in label value`);
        value += c;
        j++;
      }
    }
    assert.ok(!(name in labels), `${where}: duplicate label ${name}`);
    labels[name] = value;
    if (j === text.length) break;
    assert.equal(text[j], ',', `${where}: expected ',' between labels`);
    i = j + 1;
  }
  return labels;
}

// Returns { families: {name: {type, help}}, samples: Map("name{labels}" -> number) }.
// Every family has HELP then TYPE, once, before its samples; samples of a family are
// contiguous; a sample key appears once; counters end in _total and are >= 0.
export function parsePrometheus(text) {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const families = {};
  const samples = new Map();
  let current = null;
  const closed = new Set();
  const lastBucket = new Map();
  text.slice(0, -1).split('\n').forEach((line, n) => {
    const where = `line ${n + 1} "${line}"`;
    assert.ok(line.length > 0, `${where}: empty line`);
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
      assert.ok(m, `${where}: comment is neither HELP nor TYPE`);
      const [, kind, name, rest] = m;
      assert.match(name, NAME, where);
      if (kind === 'HELP') {
        assert.ok(!(name in families), `${where}: second HELP for ${name}`);
        if (current) closed.add(current);
        families[name] = { help: rest, type: null };
        current = name;
      } else {
        assert.equal(current, name, `${where}: TYPE must follow its HELP`);
        assert.equal(families[name].type, null, `${where}: second TYPE`);
        assert.ok(TYPES.has(rest), `${where}: unknown type`);
        families[name].type = rest;
      }
      return;
    }
    const m = /^([^\s{]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `${where}: not "name{labels} value"`);
    const [, name, labelText, valueText] = m;
    assert.match(name, NAME, where);
    // A histogram's samples are FAMILY_bucket{le=...}, FAMILY_sum and FAMILY_count.
    const histogram = current && families[current].type === 'histogram' &&
      [`${current}_bucket`, `${current}_sum`, `${current}_count`].includes(name);
    assert.ok(name === current || histogram, `${where}: sample outside its family (HELP/TYPE first)`);
    assert.ok(!closed.has(current), `${where}: family continued after another began`);
    assert.ok(families[current].type, `${where}: no TYPE before the sample`);
    assert.match(valueText, /^(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf)$/, where);
    const labels = labelText ? parseLabels(labelText, where) : {};
    const key = name + (labelText ? `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : '');
    assert.ok(!samples.has(key), `${where}: duplicate sample`);
    const value = Number(valueText);
    if (histogram && name.endsWith('_bucket')) {
      assert.ok('le' in labels, `${where}: bucket without le`);
      const prev = lastBucket.get(current);
      assert.ok(prev === undefined || value >= prev, `${where}: buckets must be cumulative`);
      lastBucket.set(current, value);
    }
    if (families[current].type === 'counter') {
      assert.ok(name.endsWith('_total'), `${where}: counter name should end in _total`);
      assert.ok(value >= 0, `${where}: negative counter`);
    }
    samples.set(key, value);
  });
  for (const [name, f] of Object.entries(families)) {
    assert.ok(f.type, `${name}: HELP without TYPE`);
    assert.ok([...samples.keys()].some((k) => k === name || k.startsWith(`${name}{`) ||
      (f.type === 'histogram' && k.startsWith(`${name}_`))),
      `${name}: family without samples`);
  }
  return { families, samples };
}

export async function scrape(server) {
  const r = await fetch(`${server.apiUrl}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await r.text());
}

export function delta(before, after) {
  const out = {};
  for (const [k, v] of after.samples) out[k] = v - (before.samples.get(k) ?? 0);
  return out;
}

