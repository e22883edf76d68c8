/**
 * Publication latency: from the moment the simulator makes a task publishable
 * (publishes TASK_RUNNING; no delay, no health checks) to the first request
 * the task serves, and from the moment it starts killing a task
 * (TASK_KILLING) to the last request the task receives. The whole path:
 * Marathon event → agent → push → worker sync → balancer.
 */
import { pino } from 'pino';
import type { MarathonEvent } from '../test/sim/marathon-sim.js';
import { MarathonSim } from '../test/sim/marathon-sim.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { AGENT_DEFAULTS, startAgent, type AgentOptions } from '../agent/run-agent.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { atMost, percentile, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startProber } from './lib/prober.js';

export interface PublicationNode {
  readonly publicUrl: string;
  /** How the agent reaches the node's data plane. */
  readonly agent: Pick<AgentOptions, 'nginxAdmin' | 'haproxySocket' | 'adminToken'>;
}

export interface PublicationTimes {
  readonly publish: number[];
  readonly unpublish: number[];
  readonly failedProbes: number;
}

/**
 * Runs an agent against `node` and a simulator, scales one app up and kills
 * the new task `changes / 2` times under probes, and returns the latencies.
 */
export async function measurePublication(ctx: BenchContext, node: PublicationNode, changes: number): Promise<PublicationTimes> {
  const marathon = await MarathonSim.start();
  const agent = startAgent({ ...AGENT_DEFAULTS, marathon: marathon.url, ...node.agent, redis: null, group: null }, pino({ level: 'silent' }));
  const eventAt = new Map<string, number>();
  const unsubscribe = marathon.onEvent((event: MarathonEvent, at: number) => {
    const e = event as { eventType?: string; taskId?: string; taskStatus?: string };
    if (e.eventType === 'status_update_event' && e.taskId && (e.taskStatus === 'TASK_RUNNING' || e.taskStatus === 'TASK_KILLING')) {
      eventAt.set(`${e.taskStatus}:${e.taskId}`, at);
    }
  });
  const appId = '/latency';
  const publish: number[] = [];
  const unpublish: number[] = [];
  let prober: ReturnType<typeof startProber> | null = null;
  try {
    await marathon.deploy({ id: appId, instances: 3, labels: { 'edgeroute.vhosts': 'latency.bench' }, taskKillGracePeriodSeconds: 0.3 });
    await waitFor('routing', async () => ((await httpGet(`${node.publicUrl}/`, { host: 'latency.bench' })).status === 200 ? true : undefined));
    prober = startProber(node.publicUrl, 'latency.bench', 8);
    const probes = prober;
    await waitFor('traffic', () => (probes.sent() > 100 ? true : undefined));
    for (let i = 0; i < changes / 2; i++) {
      const before = new Set(marathon.tasks(appId).map((t) => t.id));
      await marathon.scale(appId, 4);
      const added = marathon.tasks(appId).find((t) => !before.has(t.id))!.id;
      const servedAt = await waitFor('the new task to serve', () => marathon.taskStats(added)?.firstRequestAt ?? undefined, 5_000, 1);
      publish.push(servedAt - (eventAt.get(`TASK_RUNNING:${added}`) as number));

      await marathon.killTask(added);
      const lastAt = marathon.taskStats(added)?.lastRequestAt ?? 0;
      unpublish.push(Math.max(0, lastAt - (eventAt.get(`TASK_KILLING:${added}`) as number)));
      if ((i + 1) % 20 === 0) ctx.progress(`${(i + 1) * 2}/${changes} changes`);
    }
  } finally {
    unsubscribe();
    await prober?.stop();
    await agent.stop();
    await marathon.stop();
  }
  return { publish, unpublish, failedProbes: prober?.failed() ?? 0 };
}

export function latencyStats(values: readonly number[]): { n: number; p50Ms: number; p99Ms: number; maxMs: number } {
  return { n: values.length, p50Ms: round(percentile(values, 50), 1), p99Ms: round(percentile(values, 99), 1), maxMs: round(Math.max(...values), 1) };
}

export const publication: Benchmark = {
  name: 'publication',
  description: 'time from TASK_RUNNING to the first request served, and from TASK_KILLING to the last request received',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const changes = ctx.smoke ? 4 : 200;
    const nginx = await startNginxNode({ workerProcesses: 2 });
    let times: PublicationTimes;
    try {
      times = await measurePublication(ctx, { publicUrl: nginx.publicUrl, agent: { nginxAdmin: nginx.adminUrl, haproxySocket: null, adminToken: nginx.adminToken } }, changes);
    } finally {
      await nginx.process.stop();
    }
    const results = {
      setup: { changes, debounceMs: AGENT_DEFAULTS.debounceMs, nginxSyncIntervalMs: 10, killGraceSeconds: 0.3, proberConcurrency: 8, failedProbes: times.failedProbes },
      publish: latencyStats(times.publish),
      unpublish: latencyStats(times.unpublish),
    };
    return {
      summary: `publish p50 ${results.publish.p50Ms} ms, p99 ${results.publish.p99Ms} ms; unpublish p50 ${results.unpublish.p50Ms} ms, p99 ${results.unpublish.p99Ms} ms (${changes} changes, ${times.failedProbes} failed probes)`,
      targets: [atMost('publish p99 ms', results.publish.p99Ms, 50), atMost('unpublish p99 ms', results.unpublish.p99Ms, 15)],
      results,
    };
  },
};
