// One split policy, two kinds of routing node: an nginx node (the plugin
// reads Redis) and an HAProxy node (the agent reads Redis, the Lua action
// splits) on one Redis and one Marathon. Every user lands on the same
// version on both, the one agent/policy/bucket.ts says.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketOf } from '../../agent/policy/bucket.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';

let redisServer: RedisServer;
let redis: Redis;
let marathon: MarathonSim;
let nginx: RoutingNode;
let haproxy: HaproxyRoutingNode;
let stable: string[];
let grey: string[];

const SEED = 'cross-2026-11';
const PERCENT = 30;
const POLICY = {
  default: 'stable',
  seed: SEED,
  rules: [
    { name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' },
    { name: 'canary', match: { header: { name: 'X-Canary', values: ['always'] } }, version: 'grey' },
    { name: '30pct', match: { percentage: { value: PERCENT, by: 'cookie:uid' } }, version: 'grey' },
  ],
};

const shop = (version: string, instances: number) => ({
  id: `/shop-${version}`,
  instances,
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
});

async function versionAt(url: string, headers: Record<string, string>): Promise<string> {
  const reply = await httpGet(`${url}/`, { host: 'shop.test', headers });
  expect(reply.status).toBe(200);
  return stable.includes(reply.body) ? 'stable' : grey.includes(reply.body) ? 'grey' : `unknown:${reply.status}:${reply.body}`;
}

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  marathon = await MarathonSim.start();
  nginx = await startRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-n', listen: null }, { redis: redisServer.url });
  haproxy = await startHaproxyRoutingNode(marathon.url, { redis: redisServer.url, nodeId: 'edge-h', listen: null }, { backendPool: 4 });
  stable = (await marathon.deploy(shop('stable', 2))).map((t) => t.id);
  grey = (await marathon.deploy(shop('grey', 1))).map((t) => t.id);
  await waitForBackends(nginx.nginx.publicUrl, 'shop.test', stable);
  await waitForBackends(haproxy.haproxy.publicUrl, 'shop.test', stable);
}, 60_000);

afterAll(async () => {
  redis?.disconnect();
  await haproxy?.stop();
  await nginx?.stop();
  await marathon?.stop();
  await redisServer?.stop();
});

describe('one policy on an nginx node and an HAProxy node', () => {
  it('routes every user to the same version on both, the one the bucket hash names', async () => {
    await redis.set('edgeroute:policy:shop', JSON.stringify(POLICY));
    await redis.publish('edgeroute:policy-changed', 'shop');
    for (const url of [nginx.nginx.publicUrl, haproxy.haproxy.publicUrl]) {
      await waitFor(`the policy at ${url}`, async () => ((await versionAt(url, { 'X-Canary': 'always' })) === 'grey' ? true : undefined), 5_000);
    }
    const counts = { stable: 0, grey: 0 };
    for (let i = 1; i <= 200; i++) {
      const headers = { cookie: `session=s${i}; uid=user-${i}` };
      const expected = bucketOf(SEED, 'shop', `user-${i}`) < PERCENT * 100 ? 'grey' : 'stable';
      const [onNginx, onHaproxy] = [await versionAt(nginx.nginx.publicUrl, headers), await versionAt(haproxy.haproxy.publicUrl, headers)];
      expect({ user: i, onNginx, onHaproxy }).toEqual({ user: i, onNginx: expected, onHaproxy: expected });
      counts[expected]++;
    }
    // Both versions take users, about as the percentage says.
    expect(counts.grey).toBeGreaterThan(40);
    expect(counts.stable).toBeGreaterThan(100);
  }, 60_000);

  it('reads regions from the same Redis CIDR→region table on both', async () => {
    await redis.hset('edgeroute:regions', '127.0.0.0/8', 'south', '127.0.0.1/32', 'north');
    await redis.set('edgeroute:policy:shop', JSON.stringify({ ...POLICY, rules: [{ match: { region: ['north'] }, version: 'grey' }] }));
    await redis.publish('edgeroute:policy-changed', 'shop');
    for (const url of [nginx.nginx.publicUrl, haproxy.haproxy.publicUrl]) {
      await waitFor(`the region rule at ${url}`, async () => ((await versionAt(url, {})) === 'grey' ? true : undefined), 5_000);
    }
    await redis.hdel('edgeroute:regions', '127.0.0.1/32');
    for (const url of [nginx.nginx.publicUrl, haproxy.haproxy.publicUrl]) {
      await waitFor(`the changed table at ${url}`, async () => ((await versionAt(url, {})) === 'stable' ? true : undefined), 5_000);
    }
    await redis.del('edgeroute:regions');
    await redis.set('edgeroute:policy:shop', JSON.stringify(POLICY));
    await redis.publish('edgeroute:policy-changed', 'shop');
    for (const url of [nginx.nginx.publicUrl, haproxy.haproxy.publicUrl]) {
      await waitFor(`the first policy again at ${url}`, async () => ((await versionAt(url, { 'X-Canary': 'always' })) === 'grey' ? true : undefined), 5_000);
    }
  });

  it('applies the cookie and header rules alike, and users without the key get the default on both', async () => {
    for (const url of [nginx.nginx.publicUrl, haproxy.haproxy.publicUrl]) {
      expect(await versionAt(url, { cookie: 'grey=1' })).toBe('grey');
      expect(await versionAt(url, { 'X-Canary': 'always' })).toBe('grey');
      expect(await versionAt(url, { 'X-Canary': 'sometimes' })).toBe('stable');
      expect(await versionAt(url, {})).toBe('stable');
    }
  });
});
