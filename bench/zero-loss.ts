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

export const zeroLoss: Benchmark = {
  name: 'zero-loss',
  description: 'rolling upgrades under wrk load (POST): edgeroute vs a reload-based router',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const count = ctx.smoke ? 1 : 20;
    const instances = ctx.smoke ? 2 : 10;
    const connections = ctx.smoke ? 2 : 8;

    // edgeroute
    const marathon = await MarathonSim.start();
    const nginx = await startNginxNode({ workerProcesses: 1 });
    const agent = startAgent(
      { ...AGENT_DEFAULTS, marathon: marathon.url, nginxAdmin: nginx.adminUrl, adminToken: nginx.adminToken, redis: null, group: null },
      pino({ level: 'silent' }),
    );
    let edge: WrkResult;
    try {
      await marathon.deploy({ id: '/edge', instances, ...APP });
      await waitFor('routing', async () => ((await httpGet(`${nginx.publicUrl}/`, { host: 'zero.bench' })).status === 200 ? true : undefined));
      const wrk = startWrk(`${nginx.publicUrl}/`, 'zero.bench', connections, POST_SCRIPT);
      await new Promise((r) => setTimeout(r, 500));
      await upgrades(ctx, marathon, '/edge', count, 'edgeroute');
      await new Promise((r) => setTimeout(r, 500));
      edge = await wrk.stop();
    } finally {
      await agent.stop();
      await nginx.process.stop();
      await marathon.stop();
    }

    // reload-based baseline
    const marathon2 = await MarathonSim.start();
    const proxy = await startPlainProxy([]);
    const router = startReloadRouter(marathon2, proxy, '/reload');
    let reload: WrkResult;
    try {
      await marathon2.deploy({ id: '/reload', instances, ...APP });
      await waitFor('routing', async () => ((await httpGet(`${proxy.url}/`, { host: 'zero.bench' })).status === 200 ? true : undefined));
      const wrk = startWrk(`${proxy.url}/`, 'zero.bench', connections, POST_SCRIPT);
      await new Promise((r) => setTimeout(r, 500));
      await upgrades(ctx, marathon2, '/reload', count, 'reload baseline');
      await new Promise((r) => setTimeout(r, 500));
      reload = await wrk.stop();
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
