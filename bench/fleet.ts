/**
 * A fleet of four routing nodes (three nginx, one HAProxy) on Redis with
 * Sentinel, under load on every node (test/helpers/fleet-rig.ts):
 *
 *  - policy propagation: from a policy's SET + PUBLISH on the master to each
 *    node routing a request by it, and to the last of the four;
 *  - Marathon event to routing: from the simulator publishing a new app's
 *    TASK_RUNNING to each node's first request answered by it, and the last;
 *  - failover: from SIGKILL of the Redis master to each node routing by a
 *    policy written on the new master (nginx: the plugin asked the sentinels
 *    again; HAProxy: its agent's client followed), and to each agent's first
 *    heartbeat on the new master (heartbeats are every 2 s). Once per round;
 *    each round is a fresh rig.
 */
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import type { MarathonEvent } from '../test/sim/marathon-sim.js';
import { RedisPolicies } from '../agent/fleet/redis-policies.js';
import { PREFIX, startFleetRig, type FleetNode, type FleetRig } from '../test/helpers/fleet-rig.js';
import type { LoadReport, RunningLoad } from '../test/helpers/load.js';
import { median, percentile, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';

// An election under a heavy load can take tens of seconds (a failed attempt waits twice failover-timeout).
const PROBE_TIMEOUT_MS = 60_000;

/** Testers whose header X-Probe is `value` get the grey version. */
const probePolicy = (value: string) => ({ default: 'stable', rules: [{ name: 'probe', match: { header: { name: 'X-Probe', values: [value] } }, version: 'grey' }] });

interface Round {
  readonly electionMs: number;
  /** Per node: SIGKILL to routing by a policy written on the new master. */
  readonly followMs: Record<string, number>;
  /** Per node: SIGKILL to the agent's first heartbeat on the new master. */
  readonly heartbeatMs: Record<string, number>;
}

export const fleet: Benchmark = {
  name: 'fleet',
  description: 'four routing nodes on Redis with Sentinel under load: failover to routing resumed per node, policy propagation to all four, Marathon event to the last node routing',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const rounds = ctx.smoke ? 1 : 3;
    const policySamples = ctx.smoke ? 3 : 40;
    const eventSamples = ctx.smoke ? 2 : 20;
    const load = [loadavg()[0] ?? 0];
    const policy = { perNode: new Map<string, number[]>(), last: [] as number[] };
    const events = { perNode: new Map<string, number[]>(), last: [] as number[] };
    const failovers: Round[] = [];
    let failed = 0;
    let sent = 0;
    for (let r = 0; r < rounds; r++) {
      const rig = await startFleetRig();
      let loads: RunningLoad[] = [];
      const agent = new Agent({ keepAlive: true, maxSockets: 8 });
      /** Resolves with Date.now() when `node` first answers `ok`, polling as fast as it answers. */
      const firstAt = (node: FleetNode, host: string, headers: Record<string, string>, ok: (reply: { status: number; body: string }) => boolean) =>
        waitFor(`${node.id} on ${host}`, async () => (ok(await httpGet(`${node.publicUrl}/`, { host, headers, agent, timeoutMs: 2_000 }).catch(() => ({ status: 0, body: '' }))) ? Date.now() : undefined), PROBE_TIMEOUT_MS, 2);
      const greyIds = () => new Set(rig.marathon.tasks('/shop-grey').map((t) => t.id));
      const routedBy = (node: FleetNode, value: string) => firstAt(node, 'shop.bench', { 'x-probe': value }, (reply) => reply.status === 200 && greyIds().has(reply.body));
      try {
        await rig.marathon.deploy({ id: '/shop-stable', instances: 2, labels: { 'edgeroute.vhosts': 'shop.bench', 'edgeroute.app': 'shop', 'edgeroute.version': 'stable' } });
        await rig.marathon.deploy({ id: '/shop-grey', instances: 1, labels: { 'edgeroute.vhosts': 'shop.bench', 'edgeroute.app': 'shop', 'edgeroute.version': 'grey' } });
        await rig.setPolicy('shop', probePolicy('warm'));
        await Promise.all(rig.nodes.map((node) => routedBy(node, 'warm')));
        await waitFor('four live nodes', async () => ((await rig.fleet()).filter((n) => n.live).length === 4 ? true : undefined), 20_000);
        loads = rig.loadEverywhere('shop.bench', { concurrency: 2 });
        if (r === 0) {
          await measurePolicy(ctx, rig, policySamples, routedBy, policy);
          await measureEvents(ctx, rig, eventSamples, firstAt, events);
        }
        load.push(loadavg()[0] ?? 0);
        failovers.push(await measureFailover(rig, routedBy));
        ctx.progress(`failover ${r + 1}/${rounds}: election ${failovers.at(-1)?.electionMs} ms, routing ${JSON.stringify(failovers.at(-1)?.followMs)}`);
      } finally {
        const reports: LoadReport[] = await Promise.all(loads.map((l) => l.stop()));
        failed += reports.reduce((n, rep) => n + rep.failed, 0);
        sent += reports.reduce((n, rep) => n + rep.sent, 0);
        agent.destroy();
        await rig.stop();
      }
    }
    load.push(loadavg()[0] ?? 0);

    const stats = (values: readonly number[]) => ({ n: values.length, p50Ms: round(percentile(values, 50), 1), p99Ms: round(percentile(values, 99), 1), maxMs: round(Math.max(...values), 1) });
    const perNode = (samples: Map<string, number[]>) => Object.fromEntries([...samples].map(([id, values]) => [id, stats(values)]));
    const nodeIds = Object.keys(failovers[0]?.followMs ?? {});
    const medianOf = (pick: (round: Round) => number) => round(median(failovers.map(pick)), 0);
    const results = {
      setup: { nodes: 'edge-1..3 nginx (edge-3 via a proxy following the master), edge-4 HAProxy', rounds, policySamples, eventSamples, loadPerNode: 'concurrency 2', policyRefreshSeconds: 0.5, sentinelDownAfterMs: 1000, loadAverage1m: load.map((l) => round(l, 2)) },
      policyPropagation: { allFour: stats(policy.last), perNode: perNode(policy.perNode) },
      eventToRouting: { lastNode: stats(events.last), perNode: perNode(events.perNode) },
      failover: {
        electionMsMedian: medianOf((f) => f.electionMs),
        routingResumedMsMedian: Object.fromEntries(nodeIds.map((id) => [id, medianOf((f) => f.followMs[id] ?? NaN)])),
        agentHeartbeatMsMedian: Object.fromEntries(nodeIds.map((id) => [id, medianOf((f) => f.heartbeatMs[id] ?? NaN)])),
        rounds: failovers,
      },
      load: { sent, failed },
    };
    const resumed = results.failover.routingResumedMsMedian;
    return {
      summary:
        `policy to all four p50 ${results.policyPropagation.allFour.p50Ms} ms, p99 ${results.policyPropagation.allFour.p99Ms} ms; ` +
        `Marathon event to the last node p50 ${results.eventToRouting.lastNode.p50Ms} ms, p99 ${results.eventToRouting.lastNode.p99Ms} ms; ` +
        `failover: election ${results.failover.electionMsMedian} ms, routing by the new master ${Object.entries(resumed).map(([id, ms]) => `${id} ${ms}`).join(', ')} ms (median of ${rounds}); ` +
        `${failed} of ${sent} requests failed`,
      targets: [],
      results,
    };
  },
};

type RoutedBy = (node: FleetNode, value: string) => Promise<number>;

async function measurePolicy(ctx: BenchContext, rig: FleetRig, samples: number, routedBy: RoutedBy, into: { perNode: Map<string, number[]>; last: number[] }): Promise<void> {
  // One connection to the master, as an operator's write goes: SET, then PUBLISH (RedisPolicies.set).
  await rig.onMaster(async (client) => {
    const policies = new RedisPolicies(client, PREFIX);
    for (let i = 0; i < samples; i++) {
      const value = `p${i}`;
      const setAt = Date.now();
      await policies.set('shop', JSON.stringify(probePolicy(value)));
      const times = await Promise.all(rig.nodes.map(async (node) => [node.id, (await routedBy(node, value)) - setAt] as const));
      for (const [id, ms] of times) into.perNode.set(id, [...(into.perNode.get(id) ?? []), ms]);
      into.last.push(Math.max(...times.map(([, ms]) => ms)));
      // Start the next sample at a random point of the plugins' refresh interval.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 100));
      if ((i + 1) % 10 === 0) ctx.progress(`policy ${i + 1}/${samples}`);
    }
  });
}

async function measureEvents(
  ctx: BenchContext,
  rig: FleetRig,
  samples: number,
  firstAt: (node: FleetNode, host: string, headers: Record<string, string>, ok: (reply: { status: number; body: string }) => boolean) => Promise<number>,
  into: { perNode: Map<string, number[]>; last: number[] },
): Promise<void> {
  const runningAt = new Map<string, number>();
  const unsubscribe = rig.marathon.onEvent((event: MarathonEvent, at: number) => {
    const e = event as { eventType?: string; appId?: string; taskStatus?: string };
    if (e.eventType === 'status_update_event' && e.taskStatus === 'TASK_RUNNING' && e.appId) runningAt.set(e.appId, at);
  });
  try {
    for (let i = 0; i < samples; i++) {
      const id = `/fresh-${i}`;
      const host = `fresh-${i}.bench`;
      const polls = Promise.all(rig.nodes.map(async (node) => [node.id, await firstAt(node, host, {}, (reply) => reply.status === 200)] as const));
      await rig.marathon.deploy({ id, instances: 1, labels: { 'edgeroute.vhosts': host } });
      const firsts = await polls;
      const at = runningAt.get(id);
      if (at === undefined) throw new Error(`no TASK_RUNNING seen for ${id}`);
      for (const [node, t] of firsts) into.perNode.set(node, [...(into.perNode.get(node) ?? []), t - at]);
      into.last.push(Math.max(...firsts.map(([, t]) => t - at)));
      await rig.marathon.removeApp(id);
      if ((i + 1) % 10 === 0) ctx.progress(`events ${i + 1}/${samples}`);
    }
  } finally {
    unsubscribe();
  }
}

async function measureFailover(rig: FleetRig, routedBy: RoutedBy): Promise<Round> {
  const value = 'after-failover';
  const old = await rig.redis.killMaster();
  const killedAt = Date.now();
  // Written as soon as a master takes it (the sentinels name the old one until they elect).
  const written = waitFor('a write on the new master', () => rig.setPolicy('shop', probePolicy(value)).then(() => true, () => undefined), PROBE_TIMEOUT_MS, 20);
  const routing = Promise.all(rig.nodes.map(async (node) => [node.id, (await routedBy(node, value)) - killedAt] as const));
  const heartbeats = Promise.all(
    rig.nodes.map(async (node) => {
      const at = await waitFor(
        `${node.id}'s heartbeat on the new master`,
        async () => {
          if ((await rig.redis.masterPort()) === old) return undefined;
          const entry = (await rig.fleet().catch(() => [])).find((n) => n.nodeId === node.id);
          return entry && entry.heartbeatAt > killedAt ? entry.heartbeatAt : undefined;
        },
        PROBE_TIMEOUT_MS,
        50,
      );
      return [node.id, at - killedAt] as const;
    }),
  );
  await rig.redis.waitForNewMaster(old);
  const electionMs = Date.now() - killedAt;
  await written;
  return { electionMs, followMs: Object.fromEntries(await routing), heartbeatMs: Object.fromEntries(await heartbeats) };
}
