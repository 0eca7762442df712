// Several nodes through Redis (README "Cluster"), at the protocol level: a real
// redis-server and two hisoka nodes on loopback. Placement and Sora's redirect, no second
// redirect, the least loaded node, owner-only deletes, Redis going away and coming back,
// a node killed with SIGKILL, and draining on SIGTERM. (tests/browser/cluster.test.mjs
// runs sora-js-sdk through the same.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { expectClose, freshChannel, join, leave, open } from '../lib/abuse.mjs';
import { metric, sleep, startNode, startRedis, until } from '../lib/cluster.mjs';

let redis;
let a;
let b;

before(async () => {
  redis = await startRedis();
  a = await startNode(redis.url);
  b = await startNode(redis.url);
});

after(async () => {
  for (const n of [b, a]) if (n?.alive()) await n.stop();
  await redis?.stop();
});

const owner = (channel) => redis.cli('GET', `hisoka:channel:${channel}`);

// A connect that must be answered with `redirect` to location, then closed normally.
async function expectRedirect(url, channel, location, extra = {}) {
  const c = await open(url, { role: 'sendrecv', channel_id: channel, ...extra });
  const msg = await c.next('redirect');
  assert.deepEqual(msg, { type: 'redirect', location });
  await expectClose(c, 1000, /REDIRECT/);
}

const members = [];

test('a channel lives on one node; a connect at another is redirected there (Sora redirect)', async () => {
  const ch = freshChannel('placed');
  // Both nodes are idle: the first connect keeps the channel where it arrived.
  members.push(await join(a.url, ch));
  assert.equal(owner(ch), a.nodeId);
  await expectRedirect(b.url, ch, a.config.cluster_node_url);
  // The client follows it as sora-js-sdk does: the same connect with "redirect": true.
  const second = await join(a.url, ch, { redirect: true });
  assert.equal(second.created.channel_connections, 2);
  members.push(second);
  const m = await b.metrics();
  assert.equal(metric(m, 'hisoka_cluster_redirects_total'), 1);
  assert.equal(metric(m, 'hisoka_cluster_redis_up'), 1);
  assert.equal(metric(await a.metrics(), 'hisoka_cluster_placements_total{result="local"}'), 1);
  members.channel = ch;
});

test('a redirected connect is never redirected again: it is refused', async () => {
  const c = await open(b.url, { role: 'sendrecv', channel_id: members.channel, redirect: true });
  await expectClose(c, 4503, /^CLUSTER-REDIRECTED/);
  assert.equal(owner(members.channel), a.nodeId, 'the owner is unchanged');
});

test('a new channel goes to the least loaded node', async () => {
  // a has two connections, b none: once both refreshed their load (every 2 s), a new
  // channel asked of a is placed on b and the client redirected there.
  let placed = null;
  for (let i = 0; i < 30 && !placed; i++) {
    const ch = freshChannel('balanced');
    const c = await open(a.url, { role: 'sendrecv', channel_id: ch });
    const msg = await Promise.race([c.next('redirect', () => true, 5000), c.next('offer', () => true, 5000)]);
    c.close();
    await c.waitClose();
    if (msg.type === 'redirect') {
      assert.equal(msg.location, b.config.cluster_node_url);
      placed = ch;
    } else {
      await sleep(500);
    }
  }
  assert.ok(placed, 'a new channel was redirected to the idle node within 15 s');
  assert.equal(owner(placed), b.nodeId, 'claimed for b before the redirect');
  const there = await join(b.url, placed, { redirect: true });
  await leave(there);
});

test("a node deletes its own channel keys when they end, and never another node's", async () => {
  const mine = freshChannel('mine');
  // "redirect": true keeps it where it arrives (b is the less loaded node by now).
  const m = await join(a.url, mine, { redirect: true });
  assert.equal(owner(mine), a.nodeId);
  await leave(m);
  assert.ok(await until(() => owner(mine) === '', 3000), 'its key is gone at once, not at expiry');

  const taken = freshChannel('taken');
  const t = await join(a.url, taken, { redirect: true });
  redis.cli('SET', `hisoka:channel:${taken}`, 'another-node', 'PX', '60000');
  await leave(t);
  await sleep(1500);
  assert.equal(owner(taken), 'another-node', "another node's key is left alone");
  redis.cli('DEL', `hisoka:channel:${taken}`);
});

test('Redis down: live channels go on and take members, new channels are refused; then it returns', async () => {
  const live = freshChannel('live');
  const first = await join(b.url, live, { redirect: true });
  assert.equal(owner(live), b.nodeId);
  const port = redis.port;
  await redis.stop();

  const down = await until(async () => (await b.health()).body.cluster.redis === 'down', 10000);
  assert.ok(down, 'b noticed that Redis is gone');
  const h = await b.health();
  assert.equal(h.status, 200, '/health stays 200: the node still serves its channels');
  assert.equal(h.body.status, 'degraded');
  assert.equal(metric(await b.metrics(), 'hisoka_cluster_redis_up'), 0);

  // The live channel takes a new member; the first one is still there.
  const second = await join(b.url, live);
  assert.equal(second.created.channel_connections, 2);
  assert.equal(first.client.closeCode, undefined);
  // A channel that lives nowhere here cannot be placed.
  const c = await open(b.url, { role: 'sendrecv', channel_id: freshChannel('nowhere') });
  await expectClose(c, 4503, /^CLUSTER-UNAVAILABLE/);
  assert.ok(metric(await b.metrics(), 'hisoka_cluster_placements_total{result="refused_unavailable"}') >= 1);

  // Long enough for a few reconnects to be refused (backoff 200 ms, doubling).
  await sleep(2000);
  assert.match((await b.health()).body.cluster.last_error, /Connection refused/,
    'b tried again while Redis was away');
  redis = await startRedis(port);
  const back = await until(async () => (await b.health()).body.cluster.redis === 'up', 15000);
  assert.ok(back, 'b reconnected to Redis');
  assert.equal((await b.health()).body.status, 'ok');
  assert.equal(metric(await b.metrics(), 'hisoka_cluster_redis_up'), 1);
  // Its live channel is its own again in the new Redis, and new channels are placed.
  assert.ok(await until(() => owner(live) === b.nodeId, 5000), 'b re-registered its channel');
  const fresh = await join(b.url, freshChannel('after'), { redirect: true });
  await leave(fresh);
  await leave(second);
  await leave(first);
  await until(async () => (await a.health()).body.cluster.redis === 'up', 15000);
});

test('kill -9 of a node: its channel can be rejoined within 10 s and lands on another node', async () => {
  const ch = members.channel;
  assert.equal(owner(ch), a.nodeId);
  a.kill9();
  const killed = Date.now();
  let joined = null;
  while (!joined && Date.now() - killed < 20000) {
    const c = await open(b.url, { role: 'sendrecv', channel_id: ch });
    const msg = await Promise.race([c.next('redirect', () => true, 5000), c.next('offer', () => true, 5000)]);
    if (msg.type === 'offer') {
      joined = { client: c, offer: msg };
    } else {
      assert.equal(msg.location, a.config.cluster_node_url, 'until then, to the node that had it');
      c.close();
      await c.waitClose();
      await sleep(250);
    }
  }
  const elapsed = Date.now() - killed;
  assert.ok(joined, 'the channel was rejoined');
  assert.ok(elapsed <= 10000, `rejoined after ${elapsed} ms`);
  assert.equal(owner(ch), b.nodeId);
  joined.client.close();
  await joined.client.waitClose();
});

test('SIGTERM: a node drains and leaves the registry', async () => {
  const id = b.nodeId;
  assert.equal(redis.cli('EXISTS', `hisoka:node:${id}`), '1');
  await b.stop();
  assert.equal(redis.cli('EXISTS', `hisoka:node:${id}`), '0');
  assert.match(b.log, /draining: node \S+ takes no new channels/);
});
