// Redis through Sentinel over TLS: every server and sentinel speaks TLS
// only (one CA), and nginx's plugin, the agent and the CLI find the master
// through the sentinels, verify every certificate, and follow a failover.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSentinels } from '../../agent/fleet/redis-target.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startNginxNode, type NginxNode } from '../../agent/sandbox/sandbox.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { spawnAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startSentinelRig, type SentinelRig } from '../helpers/redis-sentinel.js';
import { waitForBackends } from '../helpers/traffic.js';
import { pushRoutes, route } from '../helpers/direct-push.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const shop = (version: string, instances: number) => ({
  id: `/shop-${version}`,
  instances,
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
});
const greyFor = (value: string) => ({ default: 'stable', rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: [value] } }, version: 'grey' }] });

let rig: SentinelRig;
let marathon: MarathonSim;
let nginx: NginxNode;
let agent: AgentProcess;

const tlsFlags = () => ['--redis-sentinels', rig.sentinelList, '--redis-master', rig.master, '--redis-tls', '--redis-ca', rig.caFile ?? ''];
const setPolicy = (policy: object) => execa(process.execPath, [BIN, 'policy', 'set', 'shop', '-', ...tlsFlags()], { reject: false, input: JSON.stringify(policy), timeout: 90_000 });

async function versionFor(value: string): Promise<string> {
  const reply = await httpGet(`${nginx.publicUrl}/`, { host: 'shop.test', headers: { cookie: `grey=${value}` } });
  const grey = marathon.tasks('/shop-grey').map((t) => t.id);
  return reply.status !== 200 ? String(reply.status) : grey.includes(reply.body) ? 'grey' : 'stable';
}

/** A TLS client of whichever server is master now. */
async function onMaster<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port: await rig.masterPort(), lazyConnect: true, maxRetriesPerRequest: 0, tls: { ca: readFileSync(rig.caFile ?? '', 'utf8') } });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

beforeAll(async () => {
  // The bin rebuilds dist/ when a source is newer: once here.
  await execa(process.execPath, [BIN, '--version'], { reject: false, timeout: 120_000 });
  rig = await startSentinelRig('edgeroute', { tls: true });
  marathon = await MarathonSim.start();
  await marathon.deploy(shop('stable', 2));
  await marathon.deploy(shop('grey', 1));
  nginx = await startNginxNode({
    workerProcesses: 2,
    redisSentinel: { sentinels: parseSentinels(rig.sentinelList), master: rig.master, user: null, password: null, sentinelPassword: null, tls: true },
    redisCa: rig.caFile ?? '',
    policyRefreshSeconds: 0.2,
  });
  agent = spawnAgent(['--marathon', marathon.url, '--nginx-admin', nginx.adminUrl, '--node-id', 'tls-node', ...tlsFlags()], { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken });
  await waitForBackends(nginx.publicUrl, 'shop.test', marathon.tasks('/shop-stable').map((t) => t.id), 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nnginx: ${nginx.process.errorLog().slice(-3000)}\nagent: ${agent.output().slice(-3000)}`);
  });
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  await nginx?.process.stop();
  await marathon?.stop();
  await rig?.stop();
});

describe('Redis Sentinel over TLS', () => {
  it('nginx, the agent and the CLI verify every certificate, and follow a failover', async () => {
    expect(rig.caFile).not.toBeNull();
    const first = await rig.masterPort();
    const set1 = await setPolicy(greyFor('1'));
    expect(set1.stderr).toBe('');
    expect(set1.exitCode).toBe(0);
    await waitFor('nginx to apply the policy through TLS sentinels', async () => ((await versionFor('1')) === 'grey' ? true : undefined), 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\nnginx: ${nginx.process.errorLog().slice(-3000)}`);
    });
    expect(await versionFor('2')).toBe('stable');
    await waitFor('the agent in the fleet', () => onMaster((r) => r.hget('edgeroute:nodes', 'tls-node')).then((v) => v ?? undefined), 20_000);

    await rig.killMaster();
    const promoted = await rig.waitForNewMaster(first);
    expect(promoted).not.toBe(first);
    const set2 = await setPolicy(greyFor('2'));
    expect(set2.stderr).toBe('');
    expect(set2.exitCode).toBe(0);
    await waitFor('nginx to apply the policy written after the failover', async () => ((await versionFor('2')) === 'grey' ? true : undefined), 20_000);
    expect(await versionFor('1')).toBe('stable');
    expect(nginx.process.errorLog()).toMatch(new RegExp(`redis master edgeroute is at 127\\.0\\.0\\.1:${promoted} \\(was 127\\.0\\.0\\.1:${first}\\)`));
    // The agent writes to the new master over TLS.
    await onMaster((r) => r.hdel('edgeroute:nodes', 'tls-node'));
    await waitFor('the agent heartbeat on the new master', () => onMaster((r) => r.hget('edgeroute:nodes', 'tls-node')).then((v) => v ?? undefined), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\nagent: ${agent.output().slice(-4000)}`);
    });
  }, 180_000);

  it('a certificate from another CA is refused by the plugin, and said so', async () => {
    // The system bundle does not hold the rig's CA: every sentinel's handshake fails.
    const stranger = await startNginxNode({
      workerProcesses: 1,
      redisSentinel: { sentinels: parseSentinels(rig.sentinelList), master: rig.master, user: null, password: null, sentinelPassword: null, tls: true },
      policyRefreshSeconds: 0.2,
    });
    try {
      // Policies are read for apps of more than one version: give it one.
      const one = route('shop', ['shop.test'], [{ id: 'a', port: 1 }]);
      await pushRoutes(stranger, [{ ...one, versions: { ...one.versions, grey: { marathonAppId: 'shop-grey', backends: [{ id: 'b', port: 2, weight: 100, address: '127.0.0.1' }] } } }]);
      const refusal = /redis TLS handshake with 127\.0\.0\.1:\d+ failed: .* \(expected a certificate for 127\.0\.0\.1\); splitting goes on with the last good policies/;
      await waitFor('the refusal in the log', () => (refusal.test(stranger.process.errorLog()) ? true : undefined), 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\nnginx: ${stranger.process.errorLog().slice(-3000)}`);
      });
    } finally {
      await stranger.process.stop();
    }
  }, 60_000);
});
