// A fleet tested as one (test/helpers/fleet-rig.ts): one Marathon, Redis
// with Sentinel (master, replica, three sentinels) and four routing nodes
// (three nginx, one HAProxy), under continuous load on every node. The Redis
// master is SIGKILLed, an app is restarted across the fleet with
// announce-before-kill, and one node is split from Redis: no request fails
// on any node, and the fleet's shared state (policies, health memory, drain
// marks and acks) keeps moving.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DrainBoard } from '../../agent/fleet/redis-drains.js';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { PROJECT_ROOT } from '../../agent/project-paths.js';
import { PREFIX, startFleetRig, type FleetNode, type FleetRig } from '../helpers/fleet-rig.js';
import type { LoadReport, RunningLoad } from '../helpers/load.js';
import { waitForBackends } from '../helpers/traffic.js';

const HEALTH_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3 };
const shop = (version: string, instances: number) => ({
  id: `/shop-${version}`,
  instances,
  // A publish delay: a restart must not kill the next batch before the last one's replacements serve.
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version, 'edgeroute.publishDelaySeconds': '1' },
  healthChecks: [HEALTH_CHECK],
});
/** Everyone gets stable, but testers with cookie grey=VALUE get grey. */
const greyFor = (value: string) => ({ default: 'stable', rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: [value] } }, version: 'grey' }] });
const ALL = /edge-1 drained, edge-2 drained, edge-3 drained, edge-4 drained/;

let rig: FleetRig;

const taskIds = (appId: string) => rig.marathon.tasks(appId).map((t) => t.id);
/** Requests the tasks were still serving when they died: lost, whatever the client then saw. */
const cutAt = (ids: readonly string[]) => ids.reduce((n, id) => n + Object.values(rig.marathon.taskStats(id)?.cutOff ?? {}).reduce((a, b) => a + b, 0), 0);

/** The version `node` routes a tester with cookie grey=VALUE to. */
async function versionFor(node: FleetNode, value: string): Promise<string> {
  const reply = await httpGet(`${node.publicUrl}/`, { host: 'shop.test', headers: { cookie: `grey=${value}` } });
  if (reply.status !== 200) return `${reply.status}`;
  return taskIds('/shop-grey').includes(reply.body) ? 'grey' : taskIds('/shop-stable').includes(reply.body) ? 'stable' : `unknown:${reply.body}`;
}

/** Bounded wait until every node in `nodes` routes testers of `value` to grey. */
async function policyApplied(nodes: readonly FleetNode[], value: string, timeoutMs = 15_000): Promise<void> {
  await Promise.all(nodes.map((node) => waitFor(`${node.id} to apply the policy grey=${value}`, async () => ((await versionFor(node, value)) === 'grey' ? true : undefined), timeoutMs, 50)));
}

async function flowing(loads: readonly RunningLoad[]): Promise<void> {
  const start = loads.map((l) => l.sent());
  await waitFor('traffic on every node', () => (loads.every((l, i) => l.sent() > (start[i] ?? 0) + 40) ? true : undefined), 20_000);
}

/** What each node's clients saw: no failure anywhere, and traffic on every node. */
function expectNothingLost(reports: readonly LoadReport[]): void {
  expect(reports.map((r) => r.failures)).toEqual(rig.nodes.map(() => []));
  expect(reports.map((r) => r.failed)).toEqual(rig.nodes.map(() => 0));
  for (const report of reports) expect(report.sent).toBeGreaterThan(50);
}

beforeAll(async () => {
  // The bin rebuilds dist/ when a source is newer: once here, not inside a timed step.
  await execa(process.execPath, [`${PROJECT_ROOT}/bin/edgeroute.js`, '--version'], { reject: false, timeout: 120_000 });
  rig = await startFleetRig();
  await rig.marathon.deploy(shop('stable', 2));
  await rig.marathon.deploy(shop('grey', 1));
  await rig.setPolicy('shop', greyFor('a'));
  for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable'), 30_000);
  await policyApplied(rig.nodes, 'a');
  await waitFor('four live nodes', async () => ((await rig.fleet()).filter((n) => n.live).length === 4 ? true : undefined), 20_000);
}, 180_000);

afterAll(async () => {
  await rig?.stop();
});

describe('a fleet of four routing nodes on Redis with Sentinel', () => {
  it('the Redis master is SIGKILLed under load: a failover, nothing lost, every node follows the new master', async () => {
    const loads = rig.loadEverywhere('shop.test', { concurrency: 2 });
    await flowing(loads);
    const old = await rig.redis.killMaster();
    await rig.redis.waitForNewMaster(old);
    const promotedAt = Date.now();

    // Every agent writes its heartbeat to the new master (a heartbeat younger than the promotion can only have gone there).
    await waitFor(
      'every agent heartbeat on the new master',
      async () => {
        const fleet = await rig.fleet();
        return rig.nodes.every((n) => fleet.some((f) => f.nodeId === n.id && f.heartbeatAt > promotedAt)) ? true : undefined;
      },
      30_000,
    );
    // A policy written after the failover reaches all four nodes: three plugins and the HAProxy node's agent.
    await rig.setPolicy('shop', greyFor('b'));
    await policyApplied(rig.nodes, 'b');
    for (const node of rig.nodes) expect(await versionFor(node, 'a')).toBe('stable');

    // Health memory: a new task's health reaches the new master.
    const before = taskIds('/shop-stable');
    await rig.marathon.scale('/shop-stable', 3);
    const added = taskIds('/shop-stable').find((id) => !before.includes(id)) as string;
    await waitFor(
      'the new task healthy in the shared health memory',
      () => rig.onMaster(async (r) => ((JSON.parse((await r.get(`${PREFIX}health:${added}`)) ?? '{}') as { healthy?: boolean }).healthy ? true : undefined)),
      20_000,
    );
    for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable'), 20_000);

    // Drain marks and acks: every node takes a drained task out and acks it on the new master.
    const drained = before[0] as string;
    const drain = await rig.cli(['drain', drained, '--drain-timeout', '30']);
    expect(drain.exitCode, drain.all).toBe(0);
    expect(drain.all).toMatch(ALL);
    for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable').filter((id) => id !== drained), 10_000);
    await rig.onMaster((r) => new DrainBoard(r, PREFIX).unmark([drained]));
    for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable'), 10_000);

    await flowing(loads);
    expectNothingLost(await Promise.all(loads.map((l) => l.stop())));
    await rig.marathon.scale('/shop-stable', 2);
  }, 150_000);

  it('a rolling restart across the fleet with announce-before-kill: every node acks, nothing lost', async () => {
    for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable'), 20_000);
    const old = taskIds('/shop-stable');
    const loads = rig.loadEverywhere('shop.test', { concurrency: 2 });
    await flowing(loads);
    const run = await rig.cli(['restart', '/shop-stable', '--batch', '1', '--drain-timeout', '30', '--publish-timeout', '60']);
    await flowing(loads);
    const reports = await Promise.all(loads.map((l) => l.stop()));
    expect(run.exitCode, run.all).toBe(0);
    expectNothingLost(reports);
    // Each batch waited for every node's ack, then for the replacement published on every node.
    expect((run.all ?? '').match(new RegExp(ALL, 'g'))?.length).toBe(old.length);
    expect(run.all).toMatch(/edge-1 \d+\/\d+, edge-2 \d+\/\d+, edge-3 \d+\/\d+, edge-4 \d+\/\d+ published/);
    const now = taskIds('/shop-stable');
    expect(now).toHaveLength(old.length);
    expect(now.some((id) => old.includes(id))).toBe(false);
    expect(cutAt(old)).toBe(0);
    for (const report of reports) expect([...report.byBackend.keys()].some((id) => now.includes(id))).toBe(true);
  }, 150_000);

  it('one node split from Redis keeps routing on its last state; the others do not wait for it; it catches up', async () => {
    const split = rig.splitNode;
    const others = rig.nodes.filter((n) => n !== split);
    for (const node of rig.nodes) await waitForBackends(node.publicUrl, 'shop.test', taskIds('/shop-stable'), 20_000);
    const loads = rig.loadEverywhere('shop.test', { concurrency: 2 });
    await flowing(loads);
    split.proxy?.cut();

    // A drain during the split: the others ack; the split node is waited for only until its heartbeat is older than the TTL.
    const drained = taskIds('/shop-stable')[0] as string;
    const drain = await rig.cli(['drain', drained, '--drain-timeout', '40']);
    expect(drain.exitCode, drain.all).toBe(0);
    expect(drain.all).toMatch(/node edge-3 is not live \(last heartbeat \d+ s ago\); not waiting for it/);
    expect(drain.all).toMatch(/edge-1 drained, edge-2 drained, edge-4 drained/);

    // A policy written during the split reaches the others; the split node routes on its last policy.
    await rig.setPolicy('shop', greyFor('c'));
    await policyApplied(others, 'c');
    expect(await versionFor(split, 'b')).toBe('grey');
    expect(await versionFor(split, 'c')).toBe('stable');
    await flowing(loads);

    // Redis returns: the split node reads the policy, acks the drain and counts again.
    split.proxy?.restore();
    await policyApplied([split], 'c', 20_000);
    await waitFor(
      'the split node to ack the drain',
      () => rig.onMaster(async (r) => ((await new DrainBoard(r, PREFIX).acks([drained])).get(drained)?.acks.get(split.id)?.settled ? true : undefined)),
      20_000,
    );
    await waitForBackends(split.publicUrl, 'shop.test', taskIds('/shop-stable').filter((id) => id !== drained), 10_000);
    await waitFor('the split node live again', async () => ((await rig.fleet()).find((n) => n.nodeId === split.id)?.live ? true : undefined), 20_000);
    await rig.onMaster((r) => new DrainBoard(r, PREFIX).unmark([drained]));

    await flowing(loads);
    expectNothingLost(await Promise.all(loads.map((l) => l.stop())));
  }, 150_000);
});
