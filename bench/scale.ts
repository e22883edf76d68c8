/**
 * Scale: 10,000 apps and 100,000 tasks in the simulator (virtual tasks
 * pointing at four fast backends). The agent runs as its own process, as on
 * a routing node: its full-sync time, peak RSS, push size and time, nginx
 * workers' memory, the cost of one incremental event, and data-plane
 * requests/s at 10,000 apps against 10.
 */
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../agent/project-paths.js';
import { startNginxNode, type NginxNode } from '../agent/sandbox/sandbox.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { Redis } from 'ioredis';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { MarathonSim, type SimAppSpec } from '../test/sim/marathon-sim.js';
import { atLeast, atMost, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { memoryMb, treeMemoryMb } from './lib/proc.js';
import { pushTable } from './lib/push.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

interface SyncLine {
  msg: string;
  full?: boolean;
  appsFetched?: number;
  waitedMs?: number;
  answeredMs?: number;
  cpuMs?: number;
  fetchMs?: number;
  computeMs?: number;
  pushMs?: number;
  pushBytes?: number;
  totalMs?: number;
  /** The push's end, ms since the epoch with decimals (performance.timeOrigin + now). */
  at?: number;
  time?: string;
}

/**
 * SCALE_HEALTH=1: as most production clusters, every app has a health check
 * (each task listed with its result) and the agent remembers health in Redis.
 */
const WITH_HEALTH = process.env.SCALE_HEALTH === '1';

function appSpecs(count: number, tasksPerApp: number, ports: readonly number[]): SimAppSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `/scale/app-${i}`,
    instances: tasksPerApp,
    labels: { 'edgeroute.vhosts': `app-${i}.scale.bench` },
    backendPorts: [...ports],
    ...(WITH_HEALTH ? { healthChecks: [{ protocol: 'MESOS_HTTP', path: '/health', portIndex: 0, gracePeriodSeconds: 30, intervalSeconds: 10, maxConsecutiveFailures: 3 }] } : {}),
  }));
}

async function flushRedis(url: string | null): Promise<void> {
  if (url === null) return;
  const client = new Redis(url);
  try {
    await client.flushall();
  } finally {
    client.disconnect();
  }
}

/** As the systemd unit runs it (SCALE_AGENT_NODE_OPTIONS to try others; '' for Node's own heap settings). */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=8';

/** The agent as its own process, as on a routing node, its JSON log lines collected into `lines`. */
function spawnAgent(marathonUrl: string, nginx: NginxNode, lines: SyncLine[], redisUrl: string | null): { agent: ResultPromise; lines: SyncLine[] } {
  // SCALE_AGENT_NODE_ARGS: flags NODE_OPTIONS refuses, such as --cpu-prof (to profile the agent under this load).
  const nodeArgs = (process.env.SCALE_AGENT_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  const agent = execa(process.execPath, [...nodeArgs, join(PROJECT_ROOT, 'bin', 'edgeroute.js'), 'agent', '--marathon', marathonUrl, '--nginx-admin', nginx.adminUrl, '--log-level', 'debug', ...(redisUrl ? ['--redis', redisUrl] : [])], {
    env: { EDGEROUTE_ADMIN_TOKEN: nginx.adminToken, NODE_OPTIONS: process.env.SCALE_AGENT_NODE_OPTIONS ?? AGENT_NODE_OPTIONS },
    reject: false,
    buffer: false,
  });
  // SCALE_AGENT_STDOUT: a file for the agent's lines that are not log lines (what --trace-gc prints).
  const otherLines = process.env.SCALE_AGENT_STDOUT;
  let partial = '';
  agent.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as SyncLine);
      } catch {
        if (otherLines) appendFileSync(otherLines, `${part}\n`);
      }
    }
  });
  return { agent, lines };
}

function describeFullSync(l: SyncLine): string {
  return `${l.totalMs} ms, agent CPU ${l.cpuMs} ms (fetch ${l.fetchMs} of which Marathon's first byte ${l.answeredMs}, compute ${l.computeMs}, push ${l.pushMs}, ${l.pushBytes} bytes)`;
}

export const scale: Benchmark = {
  name: 'scale',
  description: '10,000 apps / 100,000 tasks: agent full sync, RSS, push, nginx memory, one event, data plane',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const appCount = ctx.smoke ? 50 : 10_000;
    const tasksPerApp = 10;
    const events = ctx.smoke ? 3 : 20;
    const backends = await startStaticBackends(4);
    const marathon = await MarathonSim.start();
    const nginx = await startNginxNode({ workerProcesses: 2 });
    const small = await startNginxNode({ workerProcesses: 2 });
    const redis = WITH_HEALTH ? await startRedis() : null;
    const lines: SyncLine[] = [];
    let agent: ResultPromise | null = null;
    try {
      const loadStarted = performance.now();
      marathon.loadBulk(appSpecs(appCount, tasksPerApp, backends.ports));
      ctx.progress(`simulator holds ${appCount} apps, ${appCount * tasksPerApp} tasks (${Math.round(performance.now() - loadStarted)} ms)`);
      // The listing rendered before the agent asks, as a running Marathon holds its state: the full sync then
      // times the agent and nginx, not the simulator's first rendering of 10,000 apps (reported apart).
      const simulatorRenderMs = round(marathon.renderListing(), 0);

      // Full syncs before the main one, each by a fresh agent into a fresh nginx: one full sync moves by
      // ±20 % on a shared machine, so the figure is the median of several.
      const fullSyncRounds = ctx.smoke ? 1 : Number(process.env.SCALE_FULL_SYNC_ROUNDS ?? 5);
      const fullSyncs: SyncLine[] = [];
      for (let r = 1; r < fullSyncRounds; r++) {
        const fresh = await startNginxNode({ workerProcesses: 2 });
        // Each with an empty health memory, as a first node of a cluster.
        await flushRedis(redis?.url ?? null);
        const extra = spawnAgent(marathon.url, fresh, [], redis?.url ?? null);
        try {
          fullSyncs.push(await waitFor('a full sync', () => extra.lines.find((l) => l.msg === 'synced' && l.full), 120_000, 20));
        } finally {
          extra.agent.kill('SIGTERM');
          await extra.agent.catch(() => undefined);
          await fresh.process.stop();
        }
        ctx.progress(`full sync round ${r}/${fullSyncRounds}: ${describeFullSync(fullSyncs[fullSyncs.length - 1] as SyncLine)}`);
      }

      const spawnedAt = performance.now();
      await flushRedis(redis?.url ?? null);
      const spawned = spawnAgent(marathon.url, nginx, lines, redis?.url ?? null);
      agent = spawned.agent;
      const fullSync = await waitFor('the first full sync', () => lines.find((l) => l.msg === 'synced' && l.full), 120_000, 20);
      fullSyncs.push(fullSync);
      ctx.progress(`full sync round ${fullSyncRounds}/${fullSyncRounds}: ${describeFullSync(fullSync)}`);
      const fullSyncMs = median(fullSyncs.map((l) => l.totalMs ?? Infinity));
      const lastHost = `app-${appCount - 1}.scale.bench`;
      await waitFor('the last app to route', async () => ((await httpGet(`${nginx.publicUrl}/`, { host: lastHost })).status === 200 ? true : undefined), 60_000);
      const routableAfterMs = performance.now() - spawnedAt;
      await new Promise((r) => setTimeout(r, 500)); // every worker on the new table
      const workersMb = nginx.process.workerPids().map((pid) => memoryMb(pid).rssMb);
      ctx.progress(`full sync ${fullSyncMs} ms median of ${fullSyncs.length} (the simulator rendered its listing beforehand in ${simulatorRenderMs} ms)`);

      // One incremental change at a time: an app scaled up by one task.
      // One change is a scale-up of one app, and the event that matters is the new task's TASK_RUNNING:
      // from the simulator publishing it to the agent having pushed the app's new route (the only push
      // a change makes: its other events change no route).
      const incremental: SyncLine[] = [];
      const eventToPush: number[] = [];
      let runningAt: number | null = null;
      const unsubscribe = marathon.onEvent((event) => {
        const e = event as { eventType?: string; taskStatus?: string };
        if (e.eventType === 'status_update_event' && e.taskStatus === 'TASK_RUNNING') runningAt ??= performance.timeOrigin + performance.now();
      });
      for (let i = 0; i < events; i++) {
        const seen = lines.length;
        runningAt = null;
        const appId = `/scale/app-${(i * 487) % appCount}`;
        await marathon.scale(appId, tasksPerApp + 1);
        const pushed = await waitFor('the sync of that change', () => lines.slice(seen).find((l) => l.msg === 'pushed routing table to nginx'), 30_000, 5);
        await new Promise((r) => setTimeout(r, 100)); // the last events of that deployment
        incremental.push(...lines.slice(seen).filter((l) => l.msg === 'synced' && l.full === false));
        if (runningAt !== null && pushed.at !== undefined) eventToPush.push(pushed.at - runningAt);
      }
      unsubscribe();
      // The bin and the node it starts with V8 flags, together.
      const agentMemory = treeMemoryMb(agent.pid ?? 0);

      // Data plane: the same request into a table of 10,000 apps and one of 10.
      await pushTable(small.adminUrl, small.adminToken, Array.from({ length: 10 }, (_, i) => ({ id: `/scale/app-${i}`, vhosts: [`app-${i}.scale.bench`], versions: { stable: backends.ports } })));
      const host = 'app-5.scale.bench';
      await waitFor('the small table', async () => ((await httpGet(`${small.publicUrl}/`, { host })).status === 200 ? true : undefined));
      // Five rounds, each taking the other one first: with three, always small first, the ratio moved by ±5 %.
      const rounds = ctx.smoke ? 1 : 5;
      const seconds = ctx.smoke ? 1 : 4;
      const big: number[] = [];
      const tiny: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const measure = (url: string) => runWrk({ url: `${url}/`, headers: { host }, durationSeconds: seconds, connections: 50 });
        let a: WrkResult;
        let b: WrkResult;
        if (r % 2 === 0) {
          a = await measure(small.publicUrl);
          b = await measure(nginx.publicUrl);
        } else {
          b = await measure(nginx.publicUrl);
          a = await measure(small.publicUrl);
        }
        if (a.failed > 0 || b.failed > 0) throw new Error(`requests failed: ${a.failed} (10 apps), ${b.failed} (${appCount} apps)`);
        tiny.push(a.requestsPerSecond);
        big.push(b.requestsPerSecond);
        ctx.progress(`round ${r + 1}/${rounds}: 10 apps ${Math.round(a.requestsPerSecond)} req/s, ${appCount} apps ${Math.round(b.requestsPerSecond)} req/s`);
      }
      const ratio = median(big.map((b, i) => b / (tiny[i] as number)));

      const incrementalTotals = incremental.map((l) => l.totalMs ?? NaN);
      // Each sync from the first request it served (an event arriving) to its end.
      const requestToEnd = incremental.map((l) => (l.waitedMs ?? NaN) + (l.totalMs ?? NaN));
      const results = {
        setup: { apps: appCount, tasks: appCount * tasksPerApp, nginxWorkers: 2, incrementalChanges: events, agentNodeOptions: process.env.SCALE_AGENT_NODE_OPTIONS ?? AGENT_NODE_OPTIONS },
        fullSync: {
          simulatorRenderMs,
          medianTotalMs: fullSyncMs,
          rounds: fullSyncs.map((l) => ({ totalMs: l.totalMs, agentCpuMs: l.cpuMs, fetchMs: l.fetchMs, marathonAnsweredMs: l.answeredMs, computeMs: l.computeMs, pushMs: l.pushMs })),
          pushBytes: fullSync.pushBytes,
          routableAfterSpawnMs: round(routableAfterMs, 0),
        },
        agentMemory,
        nginxWorkersRssMb: workersMb,
        incrementalSync: {
          syncs: incremental.length,
          medianEventToPushMs: round(median(eventToPush), 2),
          maxEventToPushMs: round(Math.max(...eventToPush), 2),
          eventsTimed: eventToPush.length,
          medianRequestToEndMs: round(median(requestToEnd), 2),
          medianMs: round(median(incrementalTotals), 2),
          maxMs: round(Math.max(...incrementalTotals), 2),
          medianWaitedMs: round(median(incremental.map((l) => l.waitedMs ?? NaN)), 2),
          medianCpuMs: round(median(incremental.map((l) => l.cpuMs ?? NaN)), 2),
          medianFetchMs: round(median(incremental.map((l) => l.fetchMs ?? NaN)), 2),
          medianComputeMs: round(median(incremental.map((l) => l.computeMs ?? NaN)), 2),
          medianPushMs: round(median(incremental.map((l) => l.pushMs ?? NaN)), 2),
        },
        dataplane: { requestsPerSecond10Apps: round(median(tiny), 0), requestsPerSecondManyApps: round(median(big), 0), ratio: round(ratio) },
      };
      return {
        summary: `full sync ${fullSyncMs} ms (median of ${fullSyncs.length}: ${fullSyncs.map((l) => Math.round(l.totalMs ?? NaN)).join(', ')}; push ${fullSync.pushBytes} bytes), agent peak RSS ${agentMemory.peakRssMb} MB, nginx workers ${workersMb.join('/')} MB, one event ${results.incrementalSync.medianEventToPushMs} ms median from TASK_RUNNING to the push (a sync ${results.incrementalSync.medianMs}: read app ${results.incrementalSync.medianFetchMs}, compute ${results.incrementalSync.medianComputeMs}, push ${results.incrementalSync.medianPushMs}), req/s ${appCount} vs 10 apps ${results.dataplane.ratio}`,
        targets: [
          atMost('full sync ms (median)', fullSyncMs, 1200),
          atMost('agent peak RSS MB', agentMemory.peakRssMb, 250),
          atMost('one event, TASK_RUNNING to push, ms (median)', results.incrementalSync.medianEventToPushMs, 5),
          atLeast('req/s ratio', ratio, 0.95),
        ],
        results,
      };
    } finally {
      if (agent) {
        agent.kill('SIGTERM');
        await agent.catch(() => undefined);
      }
      await small.process.stop();
      await nginx.process.stop();
      await marathon.stop();
      await backends.stop();
      await redis?.stop();
    }
  },
};
