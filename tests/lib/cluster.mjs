// A real redis-server on a free loopback port, and hisoka nodes that share it
// (cluster_redis_url, cluster_node_url): for tests/integration/cluster.test.mjs and
// tests/browser/cluster.test.mjs.
import { execFileSync, spawn } from 'node:child_process';

import { apiRequest, freePort, startServer } from './server.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn (async) every `every` ms until it returns a truthy value or `ms` pass.
export async function until(fn, ms, every = 200) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(every);
  }
}

// Starts redis-server (no persistence) on port (a free one by default) of 127.0.0.1;
// resolves once it answers PING. options.wrap: an argv prefix for it and redis-cli (e.g.
// entering a network namespace).
export async function startRedis(port, options = {}) {
  const p = port ?? await freePort();
  const wrap = options.wrap || [];
  const argv = [...wrap, 'redis-server', '--port', String(p), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no'];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const redis = {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    get log() { return log; },
    cli(...args) {
      const cli = [...wrap, 'redis-cli', '-p', String(p), ...args];
      return execFileSync(cli[0], cli.slice(1),
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  const up = await until(() => { try { return redis.cli('PING') === 'PONG'; } catch { return false; } },
    10000, 100);
  if (!up) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not start:\n${log}`);
  }
  return redis;
}

// Three distinct free ports: signaling, API, media.
export async function freePorts() {
  const ports = new Set();
  while (ports.size < 3) ports.add(await freePort());
  return [...ports];
}

// A hisoka node of the cluster on redis, with its own free ports.
export async function startNode(redisUrl, overrides = {}, options = {}) {
  const [signaling, api, media] = await freePorts();
  const node = await startServer({
    signaling_port: signaling,
    api_port: api,
    media_port: media,
    log_level: 'info',
    cluster_redis_url: redisUrl,
    cluster_node_url: `ws://127.0.0.1:${signaling}/signaling`,
    ...overrides,
  }, options);
  node.health = async () => {
    const r = await apiRequest(node, '/health');
    return { status: r.status, body: JSON.parse(r.text) };
  };
  node.metrics = async () => (await apiRequest(node, '/metrics')).text;
  node.nodeId = (await node.health()).body.cluster.node_id;
  // Registered (its first refresh answered) before it is used, unless Redis is down.
  if (!options.redisDown) {
    const up = await until(async () => (await node.health()).body.cluster.redis === 'up', 10000);
    if (!up) throw new Error(`node did not reach Redis:\n${node.log}`);
  }
  node.kill9 = () => process.kill(node.pid, 'SIGKILL');
  return node;
}

// The value of a metric line `name value` or `name{labels} value` in /metrics text.
export function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
