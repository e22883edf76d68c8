// Paths and split policies across HAProxy reloads: the Lua action's maps
// (rules.map, versions.map, wildcards.map) are run-time state like
// hosts.map, so the agent (--haproxy-conf-dir) keeps their files in step and
// re-applies them on the new worker. Under load on a host the Lua action
// routes, by path and by policy, nothing fails across the agent's own reload
// (the pool ran out) or one it did not ask for (SIGUSR2 to the master).
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS, startAgent, type RunningAgent } from '../../agent/run-agent.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { reloadsOnceLogged, reloadStory, startHaproxy, type HaproxyProcess } from '../helpers/haproxy-node.js';
import { captureLog, type CapturedLog } from '../helpers/log-capture.js';
import { startLoad, type RunningLoad } from '../helpers/load.js';
import { waitForBackends } from '../helpers/traffic.js';

let marathon: MarathonSim;
let redisServer: RedisServer;
let redis: Redis;
let haproxy: HaproxyProcess;
let agent: RunningAgent;
let logs: CapturedLog;
const ids = (appId: string) => marathon.tasks(appId).map((t) => t.id);
const url = () => haproxy.publicUrl;
const masterPid = () => Number(readFileSync(join(haproxy.dir, 'run', 'haproxy.pid'), 'utf8').trim());

beforeAll(async () => {
  marathon = await MarathonSim.start();
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  haproxy = await startHaproxy({ backendPool: 4 });
  logs = captureLog();
  agent = startAgent(
    { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: '', haproxySocket: haproxy.socket, haproxyConfDir: haproxy.dir, adminToken: 'an-api-token-of-16-chars', redis: redisServer.url, group: null, listen: null },
    logs.log,
  );
  // A host split by path, and an app split by policy: both through the Lua action.
  await marathon.deploy({ id: '/web', instances: 1, labels: { 'edgeroute.vhosts': 'shop.test' } });
  await marathon.deploy({ id: '/api', instances: 1, labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.path': '/api', 'edgeroute.stripPath': 'true' } });
  await marathon.deploy({ id: '/cart-stable', instances: 1, labels: { 'edgeroute.vhosts': 'cart.test', 'edgeroute.app': 'cart', 'edgeroute.version': 'stable' } });
  await marathon.deploy({ id: '/cart-grey', instances: 1, labels: { 'edgeroute.vhosts': 'cart.test', 'edgeroute.app': 'cart', 'edgeroute.version': 'grey' } });
  await redis.set('edgeroute:policy:cart', JSON.stringify({ rules: [{ match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] }));
  await waitForBackends(`${url()}/api`, 'shop.test', ids('/api'));
  await waitFor('the policy', async () => ((await httpGet(`${url()}/`, { host: 'cart.test', headers: { cookie: 'grey=1' } })).body === ids('/cart-grey')[0] ? true : undefined), 5_000);
}, 60_000);

afterAll(async () => {
  redis?.disconnect();
  await agent?.stop();
  await haproxy?.stop();
  await redisServer?.stop();
  await marathon?.stop();
});

/** Load on the Lua-routed hosts: a path of shop.test and the grey users of cart.test. */
function luaLoads(): RunningLoad[] {
  return [startLoad(url(), 'shop.test', { concurrency: 2, path: '/api/x' }), startLoad(url(), 'cart.test', { concurrency: 2, headers: { cookie: 'grey=1' } })];
}

async function expectRoutedOnly(loads: RunningLoad[]): Promise<void> {
  await waitFor('traffic', () => (loads.every((l) => l.sent() > 30) ? true : undefined), 10_000);
  const [api, grey] = await Promise.all(loads.map((l) => l.stop()));
  expect(api!.failures).toEqual([]);
  expect(grey!.failures).toEqual([]);
  // Every answer came from the app and version the path and the policy name.
  expect([...api!.byBackend.keys()]).toEqual(ids('/api'));
  expect([...grey!.byBackend.keys()]).toEqual(ids('/cart-grey'));
}

describe('the Lua action across HAProxy reloads', () => {
  it("keeps routing by path and policy through the agent's reload when the pool runs out, nothing lost", async () => {
    const loads = luaLoads();
    await waitFor('traffic', () => (loads.every((l) => l.sent() > 20) ? true : undefined), 10_000);
    // The pool has 4: web, api, cart stable and grey hold them; one app more reloads.
    await marathon.deploy({ id: '/more', instances: 1, labels: { 'edgeroute.vhosts': 'more.test' } });
    await waitForBackends(url(), 'more.test', ids('/more'), 20_000);
    expect(await reloadsOnceLogged(logs, 1), reloadStory(logs, haproxy)).toBe(1);
    await expectRoutedOnly(loads);
  }, 60_000);

  it('keeps routing by path and policy through a reload the agent did not ask for (the maps come from its files)', async () => {
    const loads = luaLoads();
    await waitFor('traffic', () => (loads.every((l) => l.sent() > 20) ? true : undefined), 10_000);
    const worker = await haproxy.workerPid();
    process.kill(masterPid(), 'SIGUSR2');
    await waitFor('a new worker', async () => ((await haproxy.workerPid().catch(() => worker)) !== worker ? true : undefined), 10_000);
    await expectRoutedOnly(loads);
    const after = await httpGet(`${url()}/api/headers`, { host: 'shop.test' });
    expect(JSON.parse(after.body).taskId).toBe(ids('/api')[0]);
  }, 60_000);
});
