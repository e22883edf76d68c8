/**
 * HAProxy routing nodes, three measurements:
 * - data path: requests/s through (h) plain HAProxy with the backends in a
 *   static config, (n) an edgeroute HAProxy node (haproxy-conf's config, the
 *   app assigned at run time: hosts.map, dynamic servers) and (g) an edgeroute
 *   nginx node, same backends, alternated over rounds;
 * - publication latency on an HAProxy node (the publication benchmark's
 *   scale-up and kill loop, with the agent on --haproxy-socket);
 * - a whole table of 10,000 apps and 100,000 tasks applied to HAProxy
 *   through its runtime API: time, commands' bytes, worker memory, and the
 *   time of one task change after it.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { HaproxyDataPlane } from '../agent/dataplane/haproxy/haproxy-data-plane.js';
import type { AppRoute } from '../agent/core/routing-table.js';
import { hashString } from '../agent/core/hash.js';
import { freePort } from '../agent/sandbox/free-port.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { HAPROXY_BIN, startHaproxy, type HaproxyProcess } from '../test/helpers/haproxy-node.js';
import { atLeast, atMost, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { memoryMb } from './lib/proc.js';
import { appRoute, pushTable } from './lib/push.js';
import { latencyStats, measurePublication } from './publication.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const HOST = 'one.bench';
const PATH = '/api/v1/items';
const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', cookie: 'uid=bench-user-1; session=abc' };
const silent = pino({ level: 'silent' });

/** Plain HAProxy as one would write it by hand: the same defaults and frontend as haproxy-conf's, the backends static. */
async function startPlainHaproxy(ports: readonly number[]): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-plain-haproxy-'));
  const port = await freePort();
  const conf = [
    'global',
    '    log stderr format short local0 notice',
    'defaults',
    '    mode http',
    '    option redispatch 1',
    '    retries 2',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-request 10s',
    '    timeout http-keep-alive 60s',
    'frontend plain',
    `    bind 127.0.0.1:${port}`,
    '    option forwardfor',
    '    http-request set-header X-Forwarded-Proto http',
    '    default_backend app',
    'backend app',
    '    balance roundrobin',
    ...ports.map((p, i) => `    server s${i} 127.0.0.1:${p} pool-max-conn -1 pool-purge-delay 5s`),
    '',
  ].join('\n');
  const confPath = join(dir, 'haproxy.cfg');
  writeFileSync(confPath, conf);
  const proc: ResultPromise = execa(HAPROXY_BIN, ['-W', '-f', confPath], { reject: false, buffer: false });
  proc.stdout?.resume();
  proc.stderr?.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitFor('plain HAProxy to answer', async () => ((await httpGet(`${url}/`).catch(() => null))?.status === 200 ? true : undefined), 10_000);
  return {
    url,
    async stop() {
      proc.kill('SIGTERM');
      await proc;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The routes of `apps` apps with `tasks` tasks each, spread over `ports` (every task a distinct server). */
function scaleRoutes(apps: number, tasks: number, ports: readonly number[]): Record<string, AppRoute> {
  const routes: Record<string, AppRoute> = {};
  for (let a = 0; a < apps; a++) {
    const id = `/scale/app-${a}`;
    const backends = Array.from({ length: tasks }, (_, t) => ({ id: `scale_app-${a}.task-${t}`, address: '127.0.0.1', port: ports[(a + t) % ports.length] as number, weight: 100 }));
    const route = { id, vhosts: [`app-${a}.scale.bench`], defaultVersion: 'stable', versions: { stable: { marathonAppId: id, backends } } };
    routes[id] = { ...route, hash: hashString(JSON.stringify(route)) };
  }
  return routes;
}

export async function dataPath(ctx: BenchContext, ports: readonly number[]) {
  const rounds = ctx.smoke ? 1 : 9;
  const seconds = ctx.smoke ? 1 : 4;
  const connections = ctx.smoke ? 4 : 50;
  const plain = await startPlainHaproxy(ports);
  const node = await startHaproxy({ backendPool: 8 });
  const plane = new HaproxyDataPlane({ socket: node.socket }, silent);
  const nginx = await startNginxNode({ workerProcesses: 2, errorLogLevel: 'warn' });
  try {
    const app = { id: 'one', vhosts: [HOST], versions: { stable: ports } };
    const applied = await plane.apply({ version: 'bench-1', base: null, apps: { one: appRoute(app) } });
    if (!applied.ok) throw new Error(`HAProxy refused the table: ${applied.error}`);
    await pushTable(nginx.adminUrl, nginx.adminToken, [app]);
    const targets = { h: plain.url, n: node.publicUrl, g: nginx.publicUrl } as const;
    for (const url of Object.values(targets)) {
      await waitFor(`${url} to route`, async () => ((await httpGet(`${url}${PATH}`, { host: HOST })).status === 200 ? true : undefined));
    }
    const keys = ['h', 'n', 'g'] as const;
    const runs: Record<(typeof keys)[number], WrkResult[]> = { h: [], n: [], g: [] };
    for (const key of keys) await runWrk({ url: `${targets[key]}${PATH}`, headers: { ...HEADERS, host: HOST }, durationSeconds: 1, connections });
    for (let r = 1; r <= rounds; r++) {
      // h and n next to each other, taking turns first: their ratio matters most.
      for (const key of r % 2 === 1 ? keys : (['n', 'h', 'g'] as const)) {
        const result = await runWrk({ url: `${targets[key]}${PATH}`, headers: { ...HEADERS, host: HOST }, durationSeconds: seconds, connections });
        if (result.failed > 0) throw new Error(`${key}: ${result.failed} of ${result.requests} requests failed; the setup is broken`);
        runs[key].push(result);
        ctx.progress(`round ${r}/${rounds} ${key}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latency.p99} ms`);
      }
    }
    const ratio = (key: 'n' | 'g', to: 'h' | 'n' | 'g') => round(median(runs[key].map((x, i) => x.requestsPerSecond / (runs[to][i]?.requestsPerSecond ?? NaN))));
    const summaryOf = (key: (typeof keys)[number]) => ({ requestsPerSecond: round(median(runs[key].map((x) => x.requestsPerSecond)), 0), p99Ms: round(median(runs[key].map((x) => x.latency.p99))), rounds: runs[key] });
    return {
      setup: { rounds, secondsPerRun: seconds, connections, wrkThreads: 2, haproxyThreads: 'default (one per CPU)', nginxWorkers: 2, path: PATH, backends: 'nginx return 200, 4 ports, 1 worker' },
      h_plain_haproxy: summaryOf('h'),
      n_haproxy_node: summaryOf('n'),
      g_nginx_node: summaryOf('g'),
      ratio_n_h: ratio('n', 'h'),
      ratio_n_g: ratio('n', 'g'),
    };
  } finally {
    await plane.close();
    await nginx.process.stop();
    await node.stop();
    await plain.stop();
  }
}

async function publicationOnHaproxy(ctx: BenchContext) {
  const changes = ctx.smoke ? 4 : 200;
  const node = await startHaproxy({ backendPool: 8 });
  try {
    const times = await measurePublication(ctx, { publicUrl: node.publicUrl, agent: { nginxAdmin: '', haproxySocket: node.socket, adminToken: '' } }, changes);
    return { changes, failedProbes: times.failedProbes, publish: latencyStats(times.publish), unpublish: latencyStats(times.unpublish) };
  } finally {
    await node.stop();
  }
}

export async function wholeTable(ctx: BenchContext, ports: readonly number[], apps = ctx.smoke ? 50 : 10_000) {
  const tasks = 10;
  const node: HaproxyProcess = await startHaproxy({ backendPool: apps });
  const plane = new HaproxyDataPlane({ socket: node.socket }, silent);
  try {
    const routes = scaleRoutes(apps, tasks, ports);
    const workerPid = await node.workerPid();
    const before = memoryMb(workerPid);
    ctx.progress(`applying ${apps} apps, ${apps * tasks} tasks`);
    const started = performance.now();
    const applied = await plane.apply({ version: 'scale-1', base: null, apps: routes });
    const fullMs = performance.now() - started;
    if (!applied.ok) throw new Error(`HAProxy refused the table: ${applied.error}`);
    const after = memoryMb(workerPid);
    const last = `app-${apps - 1}.scale.bench`;
    const answered = await httpGet(`${node.publicUrl}/`, { host: last });
    if (answered.status !== 200) throw new Error(`${last} answered ${answered.status} after the apply`);
    // One task more on one app: what a deploy or a scale costs once the table is there.
    const id = '/scale/app-0';
    const grown = routes[id]!;
    const stable = grown.versions['stable']!;
    const more = { ...grown, versions: { stable: { ...stable, backends: [...stable.backends, { id: 'scale_app-0.task-new', address: '127.0.0.1', port: ports[0] as number, weight: 100 }] } } };
    const changeStarted = performance.now();
    const changed = await plane.apply({ version: 'scale-2', base: 'scale-1', apps: { [id]: { ...more, hash: hashString(JSON.stringify(more)) } } });
    const changeMs = performance.now() - changeStarted;
    if (!changed.ok) throw new Error(`HAProxy refused the change: ${changed.error}`);
    return {
      apps,
      tasks: apps * tasks,
      fullApplyMs: round(fullMs, 0),
      fullApplyBytes: applied.bytes,
      oneTaskChangeMs: round(changeMs, 1),
      workerRssMb: { before: before.rssMb, after: after.rssMb },
      workerPidUnchanged: (await node.workerPid()) === workerPid,
    };
  } finally {
    await plane.close();
    await node.stop();
  }
}

export const haproxy: Benchmark = {
  name: 'haproxy',
  description: 'HAProxy nodes: requests/s vs plain HAProxy and vs an nginx node; publication latency; 10,000 apps / 100,000 tasks applied through the runtime API',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const backends = await startStaticBackends(4);
    try {
      ctx.progress('data path');
      const path = await dataPath(ctx, backends.ports);
      ctx.progress('publication');
      const publication = await publicationOnHaproxy(ctx);
      ctx.progress('whole table');
      const table = await wholeTable(ctx, backends.ports);
      const results = { dataPath: path, publication, wholeTable: table };
      return {
        summary:
          `HAProxy node / plain HAProxy ${path.ratio_n_h}, HAProxy node / nginx node ${path.ratio_n_g} (req/s plain ${path.h_plain_haproxy.requestsPerSecond}, node ${path.n_haproxy_node.requestsPerSecond}, nginx node ${path.g_nginx_node.requestsPerSecond}); ` +
          `publish p50 ${publication.publish.p50Ms} ms, p99 ${publication.publish.p99Ms} ms, unpublish p99 ${publication.unpublish.p99Ms} ms; ` +
          `${table.apps} apps / ${table.tasks} tasks applied in ${table.fullApplyMs} ms, one task change ${table.oneTaskChangeMs} ms, worker RSS ${table.workerRssMb.after} MB`,
        targets: [
          // The node runs a few rules plain HAProxy does not (the Host in a variable, hosts.map, the version header from versions.map, the client's X-Edgeroute-Version removed).
          atLeast('HAProxy node / plain HAProxy requests per second', path.ratio_n_h, 0.9),
          atMost('HAProxy publish p99 ms', publication.publish.p99Ms, 50),
          atMost('HAProxy unpublish p99 ms', publication.unpublish.p99Ms, 50),
          atMost('one task change after a 10,000-app table, ms', table.oneTaskChangeMs, 100),
        ],
        results,
      };
    } finally {
      await backends.stop();
    }
  },
};
