// No request lost while tasks come and go, on both data planes (one test
// body, two rigs: real nginx and real HAProxy): Marathon leader failover
// (health reset to unknown), an agent restart inside that window, and a
// rolling upgrade under continuous load (TASK_KILLING first, then the kill),
// with the data plane's processes unchanged.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startLoad } from '../helpers/load.js';
import { RIGS, startRigNode, type RigNode } from '../helpers/data-plane-rig.js';
import { waitForBackends, waitForStatus } from '../helpers/traffic.js';

const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };

describe.each(RIGS)('zero loss ($kind)', (rig) => {
  let redis: RedisServer;
  let marathon: MarathonSim;
  let node: RigNode;

  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
  const noResults = () => marathon.tasks('/svc').every((t) => t.healthy === null);

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  afterEach(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  async function setUp(redisUrl: string | null): Promise<void> {
    marathon = await MarathonSim.start({ instances: 2, heartbeatMs: 500 });
    node = await startRigNode(rig, marathon.urls.join(','), { redis: redisUrl, stallTimeoutMs: 3_000 });
    await marathon.deploy({ id: '/svc', instances: 3, labels: { 'edgeroute.vhosts': 'svc.test' }, healthChecks: [HEALTH_CHECK] });
    await waitForBackends(node.publicUrl, 'svc.test', taskIds('/svc'));
    // The memory must have reached Redis before a restarted agent can recall it.
    if (redisUrl) await waitFor('health written to redis', async () => ((await redisKeys()).length >= 3 ? true : undefined));
  }

  async function redisKeys(): Promise<string[]> {
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url);
    try {
      return await client.keys('edgeroute:health:*');
    } finally {
      client.disconnect();
    }
  }

  describe('Marathon leader failover', () => {
    it('loses no request while health is unknown, across an agent restart in that window', async () => {
      await setUp(redis.url);
      const load = startLoad(node.publicUrl, 'svc.test');
      await waitFor('traffic', () => (load.sent() > 50 ? true : undefined));

      await marathon.electLeader(1);
      expect(noResults()).toBe(true);
      await waitFor('the agent to follow the new leader', () =>
        node.logs.has((l) => l.msg === 'marathon event stream attached' && String(l.url).startsWith(marathon.urls[1]!)) ? true : undefined,
      );
      await new Promise((r) => setTimeout(r, 300));

      // A fresh agent with an empty memory, while Marathon still reports no health.
      await node.restartAgent();
      await waitFor('the restarted agent to sync', () => (node.agent.reconciler.stats.syncs > 0 ? true : undefined));
      expect(noResults()).toBe(true);
      const reasons = node.agent.reconciler.backendStatuses.map((b) => b.reason);
      expect(reasons).toEqual(Array(3).fill('published (health remembered; Marathon reports no result)'));
      await new Promise((r) => setTimeout(r, 500));

      marathon.restoreHealth();
      await new Promise((r) => setTimeout(r, 500));
      const report = await load.stop();
      console.log(`${rig.kind} failover: ${report.sent} requests, ${report.failed} failed`);
      expect(report.failures).toEqual([]);
      expect(report.sent).toBeGreaterThan(200);
      expect([...report.byBackend.keys()].sort()).toEqual(taskIds('/svc').sort());
    });

    it('(control) without the memory, an agent restarted in that window would empty the upstream', async () => {
      await setUp(null);
      await marathon.electLeader(1);
      await node.restartAgent();
      const body = await waitForStatus(node.publicUrl, 'svc.test', 503);
      expect(body).toMatch(rig.differs.noBackendBody);
      expect(node.agent.reconciler.backendStatuses.map((b) => b.state)).toEqual(['waiting', 'waiting', 'waiting']);
    });
  });

  describe('rolling upgrade', () => {
    it('replaces 10 tasks under continuous load without losing a request', async () => {
      marathon = await MarathonSim.start();
      node = await startRigNode(rig, marathon.url);
      await marathon.deploy({
        id: '/roll',
        instances: 10,
        labels: { 'edgeroute.vhosts': 'roll.test' },
        healthChecks: [HEALTH_CHECK],
        firstHealthyAfterMs: 100,
        taskKillGracePeriodSeconds: 1,
      });
      const before = taskIds('/roll');
      await waitForBackends(node.publicUrl, 'roll.test', before);
      const pids = await node.pids();

      const load = startLoad(node.publicUrl, 'roll.test', { concurrency: 4 });
      await waitFor('traffic', () => (load.sent() > 50 ? true : undefined));
      await marathon.restartApp('/roll', { batch: 2 });
      const after = taskIds('/roll');
      await waitForBackends(node.publicUrl, 'roll.test', after);
      const report = await load.stop();

      console.log(`${rig.kind} rolling upgrade: ${report.sent} requests, ${report.failed} failed, ${report.byBackend.size} backends answered`);
      expect(after.filter((id) => before.includes(id))).toEqual([]);
      expect(report.failures).toEqual([]);
      expect(report.sent).toBeGreaterThan(500);
      expect(node.logs.has((l) => l.msg === rig.differs.pushedMessage)).toBe(true);
      // Twenty task changes, not one reload: the same master and workers.
      expect(await node.pids()).toEqual(pids);
      // Both generations served traffic during the upgrade.
      expect([...report.byBackend.keys()].some((id) => before.includes(id))).toBe(true);
      expect([...report.byBackend.keys()].some((id) => after.includes(id))).toBe(true);
    });
  });
});
