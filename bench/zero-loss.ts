/**
 * Zero loss: rolling upgrades of 10 tasks under continuous wrk load (POSTs),
 * through edgeroute and through a reload-based router (upstream block
 * rewritten, nginx -s reload on every change, as marathon-lb and nixy do).
 */
import { pino } from 'pino';
import { MarathonSim } from '../test/sim/marathon-sim.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { AGENT_DEFAULTS, startAgent } from '../agent/run-agent.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { atMost, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startPlainProxy } from './lib/nginx-fixtures.js';
import { startReloadRouter } from './lib/reload-router.js';
import { POST_SCRIPT, startWrk } from './lib/wrk-background.js';
import type { WrkResult } from './lib/wrk.js';

const APP = { labels: { 'edgeroute.vhosts': 'zero.bench' }, taskKillGracePeriodSeconds: 1 };

async function upgrades(ctx: BenchContext, marathon: MarathonSim, appId: string, count: number, label: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    await marathon.restartApp(appId, { batch: 2 });
    if ((i + 1) % 5 === 0) ctx.progress(`${label}: ${i + 1}/${count} rolling upgrades`);
  }
}

function report(result: WrkResult, upgradesDone: number) {
  return { upgrades: upgradesDone, requests: result.requests, failed: result.failed, non2xx: result.non2xx, socketErrors: result.socketErrors, p50Ms: result.latency.p50, p99Ms: result.latency.p99, maxMs: result.latency.max, requestsPerSecond: round(result.requestsPerSecond, 0) };
}

/** Runs `count` rolling upgrades of `appId` under wrk load through `url`, and returns what wrk saw. */
async function underLoad(ctx: BenchContext, marathon: MarathonSim, url: string, appId: string, opts: { count: number; instances: number; connections: number; label: string }): Promise<WrkResult> {
  await marathon.deploy({ id: appId, instances: opts.instances, ...APP });
  await waitFor('routing', async () => ((await httpGet(`${url}/`, { host: 'zero.bench' })).status === 200 ? true : undefined));
  const wrk = startWrk(`${url}/`, 'zero.bench', opts.connections, POST_SCRIPT);
  await new Promise((r) => setTimeout(r, 500));
  await upgrades(ctx, marathon, appId, opts.count, opts.label);
  await new Promise((r) => setTimeout(r, 500));
  return wrk.stop();
}

export const zeroLoss: Benchmark = {
  name: 'zero-loss',
  description: 'rolling upgrades under wrk load (POST): edgeroute vs a reload-based router',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const count = ctx.smoke ? 1 : 20;
    const instances = ctx.smoke ? 2 : 10;
    const connections = ctx.smoke ? 2 : 8;

    const marathon = await MarathonSim.start();
    const nginx = await startNginxNode({ workerProcesses: 1, errorLogLevel: 'warn' });
    const agent = startAgent(
      { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null },
      pino({ level: 'silent' }),
    );
    let edge: WrkResult;
    try {
      edge = await underLoad(ctx, marathon, nginx.publicUrl, '/edge', { count, instances, connections, label: 'edgeroute' });
    } finally {
      await agent.stop();
      await nginx.process.stop();
      await marathon.stop();
    }

    const marathon2 = await MarathonSim.start();
    const proxy = await startPlainProxy([]);
    const router = startReloadRouter(marathon2, proxy, '/reload');
    let reload: WrkResult;
    try {
      reload = await underLoad(ctx, marathon2, proxy.url, '/reload', { count, instances, connections, label: 'reload baseline' });
    } finally {
      await router.stop();
      await proxy.stop();
      await marathon2.stop();
    }

    const results = {
      setup: { rollingUpgrades: count, tasks: instances, batch: 2, killGraceSeconds: 1, wrk: `1 thread, ${connections} connections, POST`, reloads: router.reloads() },
      edgeroute: report(edge, count),
      reloadBaseline: report(reload, count),
    };
    return {
      summary: `edgeroute ${edge.failed} failed of ${edge.requests} (p99 ${edge.latency.p99} ms); reload baseline ${reload.failed} failed of ${reload.requests} (p99 ${reload.latency.p99} ms, ${router.reloads()} reloads); ${count} rolling upgrades of ${instances} tasks`,
      targets: [atMost('edgeroute failed requests', edge.failed, 0)],
      results,
    };
  },
};
