/**
 * Host + path lookup at scale: requests/s through a plugin holding 10,000
 * apps of 3 path prefixes each against one holding 10, alternated round by
 * round, the same request into the same kind of site.
 *
 * Layout (the realistic case of path routing, as marathon-lb and Traefik
 * users have it): a domain is shared by a few services, each under its own
 * prefixes. 10,000 apps on 2,500 hosts, 4 apps a host (api, auth, shop,
 * media), each app holding `/svc`, `/svc/v2` and `/svc/admin`: 12 prefixes a
 * host, 30,000 in all. The request (`/api/orders/42`) matches the shortest
 * prefix of its site, which the plugin's longest-first scan reaches last: the
 * slowest request that routes, in this layout. The small table holds the
 * same site (same 4 apps, same 12 prefixes) plus 6 apps on 2 other hosts, so
 * the comparison is of table size alone.
 */
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { atLeast, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { memoryMb } from './lib/proc.js';
import { pushTable, type BenchApp } from './lib/push.js';
import { runWrk } from './lib/wrk.js';

export const SERVICES = ['api', 'auth', 'shop', 'media'] as const;
const REQUEST_PATH = '/api/orders/42';

function hostName(site: number): string {
  return `site-${site}.paths.bench`;
}

/** `count` apps, SERVICES.length a host, 3 prefixes each. */
export function pathApps(count: number, ports: readonly number[]): BenchApp[] {
  return Array.from({ length: count }, (_, i) => {
    const host = hostName(Math.floor(i / SERVICES.length));
    const svc = SERVICES[i % SERVICES.length] as string;
    return { id: `/paths/app-${i}`, vhosts: [host], paths: { [host]: [`/${svc}`, `/${svc}/admin`, `/${svc}/v2`] }, versions: { stable: ports } };
  });
}

export const pathScale: Benchmark = {
  name: 'path-scale',
  description: 'host + path lookup: 10,000 apps of 3 prefixes (2,500 hosts, 12 prefixes each) vs 10 apps, req/s side by side',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const appCount = ctx.smoke ? 40 : 10_000;
    const rounds = ctx.smoke ? 1 : 7;
    const seconds = ctx.smoke ? 1 : 4;
    const connections = ctx.smoke ? 4 : 50;
    const backends = await startStaticBackends(4);
    const big = await startNginxNode({ workerProcesses: 1, errorLogLevel: 'warn' });
    const small = await startNginxNode({ workerProcesses: 1, errorLogLevel: 'warn' });
    try {
      const bigPush = await pushTable(big.adminUrl, big.adminToken, pathApps(appCount, backends.ports));
      ctx.progress(`pushed ${appCount} apps (${appCount * 3} prefixes on ${appCount / SERVICES.length} hosts): ${bigPush.bytes} bytes in ${Math.round(bigPush.ms)} ms`);
      // The measured site is in the middle of the big table; the small one holds the same site (apps renumbered).
      const site = Math.floor(appCount / SERVICES.length / 2);
      const smallApps = pathApps(12, backends.ports)
        .slice(0, 10)
        .map((app) => (app.vhosts[0] === hostName(0) ? renameHost(app, hostName(site)) : app));
      await pushTable(small.adminUrl, small.adminToken, smallApps);
      const host = hostName(site);
      const lastHost = hostName(appCount / SERVICES.length - 1);
      for (const [node, name] of [
        [big, host],
        [big, lastHost],
        [small, host],
      ] as const) {
        await waitFor(`${name} to route by path`, async () => ((await httpGet(`${node.publicUrl}${REQUEST_PATH}`, { host: name })).status === 200 ? true : undefined), 60_000);
      }
      // A prefix that is not at a "/" boundary must not match: the lookup really compares paths.
      const miss = await httpGet(`${big.publicUrl}/apixyz`, { host });
      if (miss.status !== 404) throw new Error(`/apixyz on ${host} answered ${miss.status}, not 404: the path lookup is not in use`);
      await new Promise((r) => setTimeout(r, 300));

      const target = (node: typeof big) => ({ url: `${node.publicUrl}${REQUEST_PATH}`, headers: { host }, durationSeconds: seconds, connections });
      for (const node of [small, big]) await runWrk({ ...target(node), durationSeconds: 1 }); // warm-up
      const bigRps: number[] = [];
      const smallRps: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // Alternate which goes first, so neither always follows the other.
        const order = r % 2 === 0 ? ([small, big] as const) : ([big, small] as const);
        for (const node of order) {
          const result = await runWrk(target(node));
          if (result.failed > 0) throw new Error(`${result.failed} of ${result.requests} requests failed; the setup is broken`);
          (node === big ? bigRps : smallRps).push(result.requestsPerSecond);
        }
        ctx.progress(`round ${r + 1}/${rounds}: 10 apps ${Math.round(smallRps[r] as number)} req/s, ${appCount} apps ${Math.round(bigRps[r] as number)} req/s (${round((bigRps[r] as number) / (smallRps[r] as number))})`);
      }
      const ratios = bigRps.map((b, i) => b / (smallRps[i] as number));
      const ratio = median(ratios);
      const results = {
        setup: {
          apps: appCount,
          hosts: appCount / SERVICES.length,
          appsPerHost: SERVICES.length,
          prefixesPerApp: 3,
          prefixesPerHost: SERVICES.length * 3,
          request: `${REQUEST_PATH} on ${host}: matches /api, the last of its site's 12 prefixes in longest-first order`,
          rounds,
          secondsPerRun: seconds,
          connections,
          wrkThreads: 2,
          nginxWorkers: 1,
        },
        push: { bytes: bigPush.bytes, ms: round(bigPush.ms, 0) },
        nginxWorkerRssMb: { manyApps: big.process.workerPids().map((pid) => memoryMb(pid).rssMb), tenApps: small.process.workerPids().map((pid) => memoryMb(pid).rssMb) },
        requestsPerSecond10Apps: round(median(smallRps), 0),
        requestsPerSecondManyApps: round(median(bigRps), 0),
        ratio: round(ratio),
        ratioRange: [round(Math.min(...ratios)), round(Math.max(...ratios))],
        rounds: { tenApps: smallRps.map((v) => round(v, 0)), manyApps: bigRps.map((v) => round(v, 0)) },
      };
      return {
        summary: `req/s ${appCount} apps of 3 prefixes (${results.setup.hosts} hosts) vs 10 apps: ${results.ratio} (median of ${rounds} rounds, ${results.ratioRange.join('–')}); ${results.requestsPerSecondManyApps} vs ${results.requestsPerSecond10Apps} req/s; push ${bigPush.bytes} bytes in ${results.push.ms} ms; nginx worker ${results.nginxWorkerRssMb.manyApps.join('/')} MB vs ${results.nginxWorkerRssMb.tenApps.join('/')} MB`,
        targets: [atLeast('req/s ratio, 10,000 apps of 3 paths / 10 apps', ratio, 0.95)],
        results,
      };
    } finally {
      await small.process.stop();
      await big.process.stop();
      await backends.stop();
    }
  },
};

function renameHost(app: BenchApp, host: string): BenchApp {
  const [prefixes] = Object.values(app.paths ?? {});
  return { ...app, vhosts: [host], paths: { [host]: prefixes ?? ['/'] } };
}
