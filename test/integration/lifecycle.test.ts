// The life of a backend on both data planes (one test body, two rigs: real
// nginx and real HAProxy): delayed publication, health gating, explicit
// failure, warm-up, groups, and out-of-order events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startLoad } from '../helpers/load.js';
import { RIGS, startRigNode, type RigNode } from '../helpers/data-plane-rig.js';
import { answers, waitForBackends, waitForStatus } from '../helpers/traffic.js';

const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };

describe.each(RIGS)('the life of a backend ($kind)', (rig) => {
  let marathon: MarathonSim;
  let node: RigNode;

  const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
  const stateOf = (taskId: string) => node.agent.reconciler.backendStatuses.find((b) => b.taskId === taskId);

  beforeAll(async () => {
    marathon = await MarathonSim.start();
    node = await startRigNode(rig, marathon.url, { warmupStepMs: 200 });
  });

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  describe('delayed publication', () => {
    it('publishes a task only after its delay, counted from startedAt', async () => {
      const [task] = await marathon.deploy({ id: '/delayed', instances: 1, labels: { 'edgeroute.vhosts': 'delayed.test', 'edgeroute.publishDelaySeconds': '1.5' } });
      const deployedAt = Date.now();
      await waitFor('the agent to see the task', () => stateOf(task!.id));
      expect(stateOf(task!.id)?.state).toBe('waiting');
      expect(stateOf(task!.id)?.reason).toMatch(/^waiting \d s of publish delay$/);
      // The agent's state can be ahead of the data plane's map by a push: wait for the host to be known (503, no task yet), not 404.
      await waitForStatus(node.publicUrl, 'delayed.test', 503);
      await waitForBackends(node.publicUrl, 'delayed.test', [task!.id]);
      expect(Date.now() - deployedAt).toBeGreaterThanOrEqual(1000);
    });

    it('publishes at once a task that started longer ago than the delay', async () => {
      await marathon.deploy({ id: '/old', instances: 1, labels: { 'edgeroute.vhosts': 'old.test', 'edgeroute.publishDelaySeconds': '3600' } });
      await waitForStatus(node.publicUrl, 'old.test', 503);
      const [task] = taskIds('/old');
      marathon.setStartedAt(task!, new Date(Date.now() - 3_601_000).toISOString());
      await marathon.scale('/old', 1); // any event makes the agent look again
      await waitForBackends(node.publicUrl, 'old.test', [task!]);
    });
  });

  describe('health', () => {
    it('waits for the first health result before publishing', async () => {
      const [task] = await marathon.deploy({ id: '/hc', instances: 1, labels: { 'edgeroute.vhosts': 'hc.test' }, healthChecks: [HEALTH_CHECK], firstHealthyAfterMs: 800 });
      await waitFor('the agent to see the task', () => stateOf(task!.id));
      expect(stateOf(task!.id)).toMatchObject({ state: 'waiting', reason: 'waiting for the first health check' });
      await waitForStatus(node.publicUrl, 'hc.test', 503);
      await waitForBackends(node.publicUrl, 'hc.test', [task!.id]);
    });

    it('unpublishes a task on an explicit failed result, and republishes it when it passes', async () => {
      await marathon.scale('/hc', 3);
      await waitForBackends(node.publicUrl, 'hc.test', taskIds('/hc'));
      const [sick, ...rest] = taskIds('/hc');
      marathon.setHealth(sick!, false);
      await waitForBackends(node.publicUrl, 'hc.test', rest);
      expect(stateOf(sick!)?.state).toBe('unhealthy');
      marathon.setHealth(sick!, true);
      await waitForBackends(node.publicUrl, 'hc.test', taskIds('/hc'));
    });
  });

  describe('the snapshot wins over events', () => {
    it('does not resurrect a killed task on a late TASK_RUNNING', async () => {
      await marathon.deploy({ id: '/late', instances: 2, labels: { 'edgeroute.vhosts': 'late.test' } });
      const [victim, survivor] = taskIds('/late');
      await marathon.killTask(victim!);
      await waitForBackends(node.publicUrl, 'late.test', [survivor!]);
      marathon.publishEvent({
        eventType: 'status_update_event',
        timestamp: new Date().toISOString(),
        slaveId: 'agent-1',
        taskId: victim!,
        taskStatus: 'TASK_RUNNING',
        appId: '/late',
        host: '127.0.0.1',
        ports: [1],
        version: '2026-11-01T00:00:00.000Z',
      });
      await new Promise((r) => setTimeout(r, 300));
      const seen = await answers(node.publicUrl, 'late.test', 20);
      expect([...seen.keys()]).toEqual([survivor]);
    });

    it('ignores unknown event types quietly', async () => {
      const before = node.agent.reconciler.stats.syncRequests;
      marathon.publishEvent({ eventType: 'some_future_event', timestamp: new Date().toISOString() });
      await waitFor('the event to arrive', () => (node.agent.eventCounts.get('some_future_event') ? true : undefined));
      expect(node.agent.reconciler.stats.syncRequests).toBe(before);
      expect(node.logs.has((l) => (l.level as number) >= 40 && JSON.stringify(l).includes('some_future_event'))).toBe(false);
    });
  });

  describe('warm-up', () => {
    it("ramps a new task's share of traffic over the window, then holds its fair share", async () => {
      const [veteran] = await marathon.deploy({ id: '/warm', instances: 1, labels: { 'edgeroute.vhosts': 'warm.test', 'edgeroute.warmupSeconds': '3' } });
      marathon.setStartedAt(veteran!.id, new Date(Date.now() - 600_000).toISOString());
      await marathon.scale('/warm', 1);
      await waitForBackends(node.publicUrl, 'warm.test', [veteran!.id]);

      await marathon.scale('/warm', 2);
      const rookie = taskIds('/warm').find((id) => id !== veteran!.id) as string;
      const tasks = () => marathon.tasks('/warm').map((t) => ({ id: t.id, host: t.host, port: t.port }));
      const shares: number[] = [];
      // HAProxy nodes: what the agent set as each server's weight at the end of each window.
      const weights: Array<Map<string, number> | null> = [];
      for (let window = 0; window < 4; window++) {
        const load = startLoad(node.publicUrl, 'warm.test', { concurrency: 2 });
        await new Promise((r) => setTimeout(r, 700));
        const report = await load.stop();
        weights.push(await rig.taskWeights(node.dataPlane, tasks()));
        expect(report.failed).toBe(0);
        shares.push((report.byBackend.get(rookie) ?? 0) / report.sent);
      }
      await new Promise((r) => setTimeout(r, 1000));
      const settled = await startLoad(node.publicUrl, 'warm.test', { concurrency: 2, maxRequests: 400 });
      await new Promise((r) => setTimeout(r, 600));
      const fair = await settled.stop();
      const fairShare = (fair.byBackend.get(rookie) ?? 0) / fair.sent;
      const finalWeights = await rig.taskWeights(node.dataPlane, tasks());
      console.log(`${rig.kind} warm-up shares of the new task per 0.7 s window: ${shares.map((s) => s.toFixed(2)).join(', ')}; after: ${fairShare.toFixed(2)}`);
      expect(shares[0]).toBeLessThan(0.3);
      expect(shares[3]).toBeGreaterThan(shares[0]! + 0.1);
      expect(fairShare).toBeGreaterThan(0.4);
      expect(fairShare).toBeLessThan(0.6);
      expect(stateOf(rookie)?.state).toBe('published');
      if (rig.kind === 'haproxy') {
        // HAProxy's weights are 1-256, relative to the app's heaviest task (README): the
        // veteran holds 256 throughout, the rookie climbs from a few to 256.
        const rookieWeights = weights.map((w) => w?.get(rookie) ?? 0);
        console.log(`haproxy weights of the new task per window: ${rookieWeights.join(', ')}; after: ${finalWeights?.get(rookie)}`);
        expect(weights.every((w) => w?.get(veteran!.id) === 256)).toBe(true);
        expect(rookieWeights[0]).toBeGreaterThanOrEqual(1);
        expect(rookieWeights[0]).toBeLessThan(100);
        for (let i = 1; i < rookieWeights.length; i++) expect(rookieWeights[i]).toBeGreaterThanOrEqual(rookieWeights[i - 1]!);
        expect(finalWeights).toEqual(new Map([[veteran!.id, 256], [rookie, 256]]));
      } else {
        expect(finalWeights).toBeNull();
      }
    });
  });

  describe('groups', () => {
    it('routes only its own group', async () => {
      await marathon.deploy({ id: '/edge-a', instances: 1, labels: { 'edgeroute.vhosts': 'group-a.test', 'edgeroute.group': 'edge-a' } });
      await marathon.deploy({ id: '/ungrouped', instances: 1, labels: { 'edgeroute.vhosts': 'ungrouped.test' } });
      await waitForBackends(node.publicUrl, 'ungrouped.test', taskIds('/ungrouped'));
      expect((await httpGet(`${node.publicUrl}/`, { host: 'group-a.test' })).status).toBe(404);

      const groupNode = await startRigNode(rig, marathon.url, { group: 'edge-a' });
      try {
        await waitForBackends(groupNode.publicUrl, 'group-a.test', taskIds('/edge-a'));
        expect((await httpGet(`${groupNode.publicUrl}/`, { host: 'ungrouped.test' })).status).toBe(404);
      } finally {
        await groupNode.stop();
      }
    });
  });
});
