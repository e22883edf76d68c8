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
import { AGENT_DEFAULTS, startAgent } from '../agent/run-agent.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { atMost, percentile, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startProber } from './lib/prober.js';

export const publication: Benchmark = {
  name: 'publication',
  description: 'time from TASK_RUNNING to the first request served, and from TASK_KILLING to the last request received',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const changes = ctx.smoke ? 4 : 200;
    const marathon = await MarathonSim.start();
    const nginx = await startNginxNode({ workerProcesses: 2 });
    const agent = startAgent(
      { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null },
      pino({ level: 'silent' }),
    );
    const eventAt = new Map<string, number>();
    const unsubscribe = marathon.onEvent((event: MarathonEvent, at: number) => {
      const e = event as { eventType?: string; taskId?: string; taskStatus?: string };
      if (e.eventType === 'status_update_event' && e.taskId && (e.taskStatus === 'TASK_RUNNING' || e.taskStatus === 'TASK_KILLING')) {
        eventAt.set(`${e.taskStatus}:${e.taskId}`, at);
      }
    });
    const appId = '/latency';
    await marathon.deploy({ id: appId, instances: 3, labels: { 'edgeroute.vhosts': 'latency.bench' }, taskKillGracePeriodSeconds: 0.3 });
    await waitFor('routing', async () => ((await httpGet(`${nginx.publicUrl}/`, { host: 'latency.bench' })).status === 200 ? true : undefined));
    const prober = startProber(nginx.publicUrl, 'latency.bench', 8);
    const publish: number[] = [];
    const unpublish: number[] = [];
    try {
      await waitFor('traffic', () => (prober.sent() > 100 ? true : undefined));
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
      await prober.stop();
      await agent.stop();
      await nginx.process.stop();
      await marathon.stop();
    }
    const stats = (values: number[]) => ({ n: values.length, p50Ms: round(percentile(values, 50), 1), p99Ms: round(percentile(values, 99), 1), maxMs: round(Math.max(...values), 1) });
    const results = {
      setup: { changes, debounceMs: AGENT_DEFAULTS.debounceMs, nginxSyncIntervalMs: 10, killGraceSeconds: 0.3, proberConcurrency: 8, failedProbes: prober.failed() },
      publish: stats(publish),
      unpublish: stats(unpublish),
    };
    return {
      summary: `publish p50 ${results.publish.p50Ms} ms, p99 ${results.publish.p99Ms} ms; unpublish p50 ${results.unpublish.p50Ms} ms, p99 ${results.unpublish.p99Ms} ms (${changes} changes, ${prober.failed()} failed probes)`,
      targets: [atMost('publish p99 ms', results.publish.p99Ms, 50), atMost('unpublish p99 ms', results.unpublish.p99Ms, 50)],
      results,
    };
  },
};
