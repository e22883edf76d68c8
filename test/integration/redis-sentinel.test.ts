// Redis through Sentinel: the agent, the CLI and the nginx plugin find the
// master by asking the sentinels and follow a failover when the master dies;
// the CLI says so when it cannot confirm a write.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/sandbox/free-port.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { parseSentinels } from '../../agent/fleet/redis-target.js';
import { waitForBackends } from '../helpers/traffic.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startSentinelRig, type SentinelRig } from '../helpers/redis-sentinel.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const POLICY = { default: 'v1', rules: [] };
const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };
const shop = (version: string, instances: number) => ({
  id: `/shop-${version}`,
  instances,
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
  healthChecks: [HEALTH_CHECK],
});
/** Testers with cookie grey=VALUE get the grey version. */
const greyFor = (value: string) => ({ rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: [value] } }, version: 'grey' }] });

let rig: SentinelRig;
let marathon: MarathonSim;
let agent: AgentProcess;
let nginx: NginxNode;
let stableIds: string[];
let greyIds: string[];

/** Which version nginx sent the request to, by task id. */
async function versionFor(cookie: string): Promise<string> {
  const reply = await httpGet(`${nginx.publicUrl}/`, { host: 'shop.test', headers: { cookie } });
  expect(reply.status).toBe(200);
  return stableIds.includes(reply.body) ? 'stable' : greyIds.includes(reply.body) ? 'grey' : `unknown:${reply.body}`;
}

async function edgeroute(args: string[], input = '') {
  return execa(process.execPath, [BIN, ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: 'sentinel-test-token' }, input, timeout: 60_000 });
}

const sentinelFlags = () => ['--redis-sentinels', rig.sentinelList, '--redis-master', rig.master];

/** A direct client to whichever server is master now. */
async function onMaster<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port: await rig.masterPort(), lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  rig = await startSentinelRig();
  marathon = await MarathonSim.start();
  stableIds = (await marathon.deploy(shop('stable', 2))).map((t) => t.id);
  greyIds = (await marathon.deploy(shop('grey', 1))).map((t) => t.id);
  nginx = await startNginxNode({
    workerProcesses: 2,
    redisSentinel: { sentinels: parseSentinels(rig.sentinelList), master: rig.master, user: null, password: null, sentinelPassword: null },
    policyRefreshSeconds: 0.2,
  });
  agent = spawnAgent(['--marathon', marathon.url, '--nginx-admin', nginx.adminUrl, '--node-id', 'sentinel-node', ...sentinelFlags()], {
    EDGEROUTE_ADMIN_TOKEN: nginx.adminToken,
  });
  await waitForBackends(nginx.publicUrl, 'shop.test', stableIds, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nnginx: ${nginx.process.errorLog().slice(-3000)}\nagent: ${agent.output().slice(-3000)}`);
  });
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await nginx?.process.stop();
  await marathon?.stop();
  await rig?.stop();
});

describe('Redis Sentinel', () => {
  it('refuses half a Sentinel setting, and Sentinel with --redis', async () => {
    const half = await edgeroute(['policy', 'list', '--redis-master', 'edgeroute']);
    expect(half.exitCode).toBe(2);
    expect(half.stderr).toMatch(/--redis-master needs --redis-sentinels/);
    const other = await edgeroute(['policy', 'list', '--redis-sentinels', '127.0.0.1:1']);
    expect(other.exitCode).toBe(2);
    expect(other.stderr).toMatch(/--redis-sentinels needs --redis-master/);
    const both = await edgeroute(['agent', '--marathon', marathon.url, '--redis', 'redis://127.0.0.1:6379', ...sentinelFlags()]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/--redis and --redis-sentinels both name Redis/);
  }, 60_000);

  it('the agent and the CLI use the master the sentinels name, and follow a failover', async () => {
    const first = await rig.masterPort();
    // The agent registers itself in the fleet on the master.
    await waitFor('the agent in the fleet', () => onMaster((r) => r.hget('edgeroute:nodes', 'sentinel-node')).then((v) => v ?? undefined), 20_000);
    const set = await edgeroute(['policy', 'set', 'shop', '-', ...sentinelFlags()], JSON.stringify(POLICY));
    expect(set.stderr).toBe('');
    expect(set.exitCode).toBe(0);
    expect(await onMaster((r) => r.get('edgeroute:policy:shop'))).toBe(JSON.stringify(POLICY));
    const grey1 = await edgeroute(['policy', 'set', 'shop', '-', ...sentinelFlags()], JSON.stringify(greyFor('1')));
    expect(grey1.exitCode).toBe(0);
    await waitFor('nginx to apply the policy through the sentinels', async () => ((await versionFor('grey=1')) === 'grey' ? true : undefined), 20_000);
    expect(await versionFor('grey=2')).toBe('stable');

    // A write sent while the master is dead and none is elected yet waits for the new one.
    await rig.killMaster();
    const during = { default: 'v3', rules: [] };
    const setDuring = await edgeroute(['policy', 'set', 'shop', '-', ...sentinelFlags()], JSON.stringify(during));
    const promoted = await rig.waitForNewMaster(first);
    expect(promoted).not.toBe(first);
    expect(setDuring.stderr).toBe('');
    expect(setDuring.exitCode).toBe(0);
    expect(await onMaster((r) => r.get('edgeroute:policy:shop'))).toBe(JSON.stringify(during));

    // nginx's plugin read the policy of before through the sentinels, and reads the new master's after the failover.
    const grey2 = await edgeroute(['policy', 'set', 'shop', '-', ...sentinelFlags()], JSON.stringify(greyFor('2')));
    expect(grey2.exitCode).toBe(0);
    await waitFor('nginx to apply the policy written after the failover', async () => ((await versionFor('grey=2')) === 'grey' ? true : undefined), 20_000);
    for (let i = 0; i < 6; i++) {
      expect(await versionFor('grey=2')).toBe('grey');
      expect(await versionFor('grey=1')).toBe('stable');
    }
    expect(nginx.process.errorLog()).toMatch(/redis master edgeroute is at 127\.0\.0\.1:\d+ \(was 127\.0\.0\.1:\d+\)/);

    // The agent writes to the new master: its heartbeat comes back after we remove it there.
    await onMaster((r) => r.hdel('edgeroute:nodes', 'sentinel-node'));
    await waitFor('the agent heartbeat on the new master', () => onMaster((r) => r.hget('edgeroute:nodes', 'sentinel-node')).then((v) => v ?? undefined), 20_000);
    expect(agent.output()).toMatch(/redis connected/);

    const after = { default: 'v2', rules: [] };
    const set2 = await edgeroute(['policy', 'set', 'shop', '-', ...sentinelFlags()], JSON.stringify(after));
    expect(set2.exitCode).toBe(0);
    expect(await onMaster((r) => r.get('edgeroute:policy:shop'))).toBe(JSON.stringify(after));
    const get = await edgeroute(['policy', 'get', 'shop', ...sentinelFlags()]);
    expect(get.exitCode).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual(after);
  }, 90_000);

  it('a write that cannot be confirmed fails with the reason', async () => {
    const nobody = await freePort();
    const run = await edgeroute(['policy', 'set', 'shop', '-', '--redis-sentinels', `127.0.0.1:${nobody}`, '--redis-master', rig.master], JSON.stringify(POLICY));
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/no sentinel answered for master edgeroute via sentinels 127\.0\.0\.1:\d+|cannot reach Redis master edgeroute/);
  }, 60_000);
});
