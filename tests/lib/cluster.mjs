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
// entering a network namespace); options.host: the address it binds instead of 127.0.0.1
// (e.g. its namespace's). redis.pid is redis-server's own (`ip netns exec` execs it).
export async function startRedis(port, options = {}) {
  const p = port ?? await freePort();
  const wrap = options.wrap || [];
  const host = options.host || '127.0.0.1';
  // Protected mode refuses clients from other addresses than loopback: off when it binds
  // another address (one of a namespace the test made).
  const argv = [...wrap, 'redis-server', '--port', String(p), '--bind', host, '--save', '',
    '--appendonly', 'no', ...(host === '127.0.0.1' ? [] : ['--protected-mode', 'no'])];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const redis = {
    port: p,
    host,
    pid: child.pid,
    url: `redis://${host}:${p}`,
    get log() { return log; },
    cli(...args) {
      const cli = [...wrap, 'redis-cli', '-h', host, '-p', String(p), ...args];
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

// A hisoka node of the cluster on redis, with its own free ports. options.address: the
// address it listens on and announces (signaling, media, API with a secret, and
// cluster_node_url), e.g. its network namespace's with options.wrap entering it; node.url
// and node.apiUrl are then on that address.
export async function startNode(redisUrl, overrides = {}, options = {}) {
  const [signaling, api, media] = await freePorts();
  const host = options.address || '127.0.0.1';
  const node = await startServer({
    signaling_port: signaling,
    api_port: api,
    media_port: media,
    log_level: 'info',
    cluster_redis_url: redisUrl,
    cluster_node_url: `ws://${host}:${signaling}/signaling`,
    ...(options.address ? {
      listen_address: host,
      public_ipv4_address: host,
      api_listen_address: host,
      api_secret: `cluster-test-secret-${signaling}`,
    } : {}),
    ...overrides,
  }, options);
  if (options.address) {
    node.url = `ws://${host}:${node.config.signaling_port}/signaling`;
    node.apiUrl = `http://${host}:${node.config.api_port}`;
  }
  node.health = async () => {
    const r = await apiRequest(node, '/health');
    return { status: r.status, body: JSON.parse(r.text) };
  };
  node.metrics = async () => (await apiRequest(node, '/metrics')).text;
  // In a namespace, readiness is a log line: the API may answer a moment later.
  const first = await until(() => node.health().catch(() => null), 5000, 50);
  if (!first) throw new Error(`node API did not answer at ${node.apiUrl}:\n${node.log}`);
  node.nodeId = first.body.cluster.node_id;
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
