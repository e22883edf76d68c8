// zdd.py's blue/green pairs (HAPROXY_DEPLOYMENT_GROUP + _COLOUR, read with
// --marathon-lb-labels) through real data planes, request by request: the
// two Marathon apps are one app, both colours' tasks served, the old colour's
// first tasks by id drained as the new colour's become healthy, with
// marathon-lb's count (README, "zdd's blue/green pairs"); then, under load,
// the new colour scales to its target and the old one goes to 0 and is
// deleted, as zdd.py finishes a deployment: no request fails, the data plane
// is never reloaded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarathonSim } from '../sim/marathon-sim.js';
import { RIGS, startRigNode, type RigNode } from '../helpers/data-plane-rig.js';
import { startLoad } from '../helpers/load.js';
import { answers, waitForBackends } from '../helpers/traffic.js';
import { waitFor } from '../../agent/sandbox/wait.js';

const HOST = 'zdd.example.com';
const HEALTH = [{ path: '/', protocol: 'HTTP', portIndex: 0, gracePeriodSeconds: 15, intervalSeconds: 3, timeoutSeconds: 15, maxConsecutiveFailures: 10 }];

/** The labels zdd.py gives a colour (HAPROXY_0_PORT is the group's service port; the vhost is the app's own). */
function colourLabels(colour: 'blue' | 'green', startedAt: string, extra: Record<string, string> = {}, group = 'web', host = HOST): Record<string, string> {
  return {
    HAPROXY_GROUP: 'external',
    HAPROXY_0_VHOST: host,
    HAPROXY_DEPLOYMENT_GROUP: group,
    HAPROXY_DEPLOYMENT_COLOUR: colour,
    HAPROXY_DEPLOYMENT_STARTED_AT: startedAt,
    HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '3',
    HAPROXY_DEPLOYMENT_ALT_PORT: '10001',
    HAPROXY_0_PORT: '10000',
    HAPROXY_APP_ID: group,
    ...extra,
  };
}

describe.each(RIGS)('zdd blue/green pair mid-deployment, routed as marathon-lb routes it ($kind)', (rig) => {
  let marathon: MarathonSim;
  let node: RigNode;
  let blue: string[];
  let green: string[];

  beforeAll(async () => {
    marathon = await MarathonSim.start({ heartbeatMs: 500 });
    node = await startRigNode(rig, marathon.url, { marathonLbLabels: true, group: 'external' }, { backendPool: 4 });
    // The live colour, from an earlier zdd deployment.
    // A kill grace period: when it is scaled to 0, its tasks stay listed (TASK_KILLING, still answering) for a second.
    blue = (await marathon.deploy({ id: '/web-blue', instances: 3, labels: colourLabels('blue', '2026-11-29T10:00:00.000000'), healthChecks: HEALTH, taskKillGracePeriodSeconds: 1 })).map((t) => t.id);
    await waitForBackends(node.publicUrl, HOST, blue);
  }, 30_000);

  afterAll(async () => {
    await node?.stop();
    await marathon?.stop();
  });

  it('serves the new colour\'s healthy task and the old colour\'s tasks but the first by id, which is drained', async () => {
    // zdd.py deploys the new colour with HAPROXY_DEPLOYMENT_NEW_INSTANCES; one task is up and healthy.
    green = (await marathon.deploy({ id: '/web-green', instances: 1, labels: colourLabels('green', '2026-11-29T11:00:00.000000', { HAPROXY_DEPLOYMENT_NEW_INSTANCES: '3' }), healthChecks: HEALTH })).map((t) => t.id);
    // N = min(3 old tasks, 1 healthy new, 1 + 3 old instances - 3 target) = 1.
    const drained = [...blue].sort()[0]!;
    await waitForBackends(node.publicUrl, HOST, [...blue.filter((id) => id !== drained), ...green]);
    const seen = await answers(node.publicUrl, HOST, 24);
    expect([...seen.keys()].sort()).toEqual([...blue.filter((id) => id !== drained), ...green].sort());
    expect(node.agent.reconciler.statusesOf('web').find((s) => s.taskId === drained)).toMatchObject({ state: 'draining', reason: 'draining: blue/green deployment web, replaced by /web-green' });
  });

  it('counts only the new colour\'s healthy tasks: when its one task fails its check, the old colour serves alone again', async () => {
    marathon.setHealth(green[0]!, false);
    await waitForBackends(node.publicUrl, HOST, blue);
    marathon.setHealth(green[0]!, true);
    await waitForBackends(node.publicUrl, HOST, [...blue.filter((id) => id !== [...blue].sort()[0]), ...green]);
  });

  it('under load: the new colour reaches its target, the old colour is drained, scaled to 0 and deleted; nothing fails, no reload', async () => {
    const pidsBefore = await node.pids();
    const load = startLoad(node.publicUrl, HOST, { concurrency: 4 });
    await waitFor('traffic to flow', () => (load.sent() > 50 ? true : undefined));
    green = (await marathon.deploy({ id: '/web-green', instances: 3, labels: colourLabels('green', '2026-11-29T11:00:00.000000', { HAPROXY_DEPLOYMENT_NEW_INSTANCES: '3' }), healthChecks: HEALTH })).map((t) => t.id);
    // N = min(3, 3, 3 + 3 - 3) = 3: the old colour is drained whole.
    await waitForBackends(node.publicUrl, HOST, green);
    const sentBeforeScale = load.sent();
    const blueRequests = () => blue.map((id) => marathon.taskStats(id)?.requests ?? 0);
    const drainedAt = blueRequests();
    await marathon.scale('/web-blue', 0);
    await marathon.removeApp('/web-blue');
    await waitFor('more traffic after the old colour went', () => (load.sent() > sentBeforeScale + 200 ? true : undefined));
    const report = await load.stop();
    // Drained, the old colour got no request more before it was killed.
    expect(blueRequests()).toEqual(drainedAt);
    expect(report.failures).toEqual([]);
    expect(report.failed).toBe(0);
    expect([...report.byBackend.keys()].every((id) => blue.includes(id) || green.includes(id))).toBe(true);
    await waitForBackends(node.publicUrl, HOST, green);
    expect(await node.pids()).toEqual(pidsBefore);
  });

  it('the old colour scaled to 0 while its tasks still run (Mesos slow to kill, no TASK_KILLING): its drained tasks stay out', async () => {
    const host = 'slow-kill.example.com';
    const labels = (colour: 'blue' | 'green', startedAt: string, extra: Record<string, string> = {}) => colourLabels(colour, startedAt, extra, 'slow', host);
    // Killed, a task stays TASK_RUNNING and answering for 1.5 s while the app already lists instances 0.
    const old = (await marathon.deploy({ id: '/slow-blue', instances: 2, labels: labels('blue', '2026-11-29T10:00:00.000000'), healthChecks: HEALTH, killLatencyMs: 1500 })).map((t) => t.id);
    const fresh = (await marathon.deploy({ id: '/slow-green', instances: 2, labels: labels('green', '2026-11-29T11:00:00.000000', { HAPROXY_DEPLOYMENT_NEW_INSTANCES: '2', HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '2' }), healthChecks: HEALTH })).map((t) => t.id);
    // N = min(2, 2, 2 + 2 - 2) = 2.
    await waitForBackends(node.publicUrl, host, fresh);
    const load = startLoad(node.publicUrl, host, { concurrency: 4 });
    await waitFor('traffic to flow', () => (load.sent() > 50 ? true : undefined));
    const oldRequests = () => old.map((id) => marathon.taskStats(id)?.requests ?? 0);
    const drainedAt = oldRequests();
    await marathon.scale('/slow-blue', 0);
    const report = await load.stop();
    expect(report.failures).toEqual([]);
    expect(report.failed).toBe(0);
    expect(oldRequests()).toEqual(drainedAt);
    expect([...report.byBackend.keys()].sort()).toEqual([...fresh].sort());
  });
});
