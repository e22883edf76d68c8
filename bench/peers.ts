/**
 * Peers side by side: the same backends and the same apps behind
 * (h) plain HAProxy 2.6 as marathon-lb runs it (a static config, one backend
 * per app, the Host looked up in a map, as marathon-lb's --haproxy-map does),
 * (n) an edgeroute HAProxy node (haproxy-conf's config, the apps assigned at
 * run time through the runtime API) and (g) an edgeroute nginx node (the
 * plugin's table pushed). Each router has two threads or workers; they are
 * measured in turns, the order rotated every round, for requests/s, p99 and
 * the router's own CPU per request (every worker's, from /proc).
 */
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { HaproxyDataPlane } from '../agent/dataplane/haproxy/haproxy-data-plane.js';
import { freePort } from '../agent/sandbox/free-port.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { startNginxNode } from '../agent/sandbox/sandbox.js';
import { waitFor } from '../agent/sandbox/wait.js';
import { HAPROXY_BIN, startHaproxy } from '../test/helpers/haproxy-node.js';
import { atLeast, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { cpuMs } from './lib/proc.js';
import { appRoute, pushTable, type BenchApp } from './lib/push.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const PATH = '/api/v1/items';
const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', cookie: 'uid=bench-user-1; session=abc' };
const ROUTERS = ['h', 'n', 'g'] as const;
type Router = (typeof ROUTERS)[number];
const silent = pino({ level: 'silent' });

interface RunningRouter {
  readonly url: string;
  /** The processes whose CPU is the router's (HAProxy's worker, nginx's workers). */
  workerPids(): Promise<readonly number[]>;
  stop(): Promise<void>;
}

const hostOf = (i: number) => `app-${i}.peers.bench`;

function peerApps(count: number, ports: readonly number[]): BenchApp[] {
  return Array.from({ length: count }, (_, i) => ({ id: `peers-${i}`, vhosts: [hostOf(i)], versions: { stable: ports } }));
}

/** The worker of `haproxy -W` (the master's one child). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Plain HAProxy the way marathon-lb writes it with --haproxy-map: a backend per app, Host → backend in a map. */
async function startMarathonLbStyleHaproxy(apps: readonly BenchApp[]): Promise<RunningRouter> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeroute-peers-haproxy-'));
  const port = await freePort();
  const mapPath = join(dir, 'domain2backend.map');
  writeFileSync(mapPath, apps.map((a) => `${a.vhosts[0]} ${a.id}\n`).join(''));
  const conf = [
    'global',
    '    log stderr format short local0 notice',
    '    nbthread 2',
    'defaults',
    '    mode http',
    '    option redispatch 1',
    '    retries 2',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-request 10s',
    '    timeout http-keep-alive 60s',
    'frontend marathon_http_in',
    `    bind 127.0.0.1:${port}`,
    '    option forwardfor',
    '    http-request set-header X-Forwarded-Proto http',
    `    use_backend %[req.hdr(host),lower,regsub(:.*$,,),map(${mapPath})]`,
    ...apps.flatMap((a) => [
      `backend ${a.id}`,
      '    balance roundrobin',
      ...(a.versions['stable'] ?? []).map((p, i) => `    server s${i} 127.0.0.1:${p} pool-max-conn -1 pool-purge-delay 5s`),
    ]),
    '',
  ].join('\n');
  const confPath = join(dir, 'haproxy.cfg');
  writeFileSync(confPath, conf);
  const proc: ResultPromise = execa(HAPROXY_BIN, ['-W', '-f', confPath], { reject: false, buffer: false });
  proc.stdout?.resume();
  proc.stderr?.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitFor('plain HAProxy to answer', async () => ((await httpGet(`${url}/`, { host: hostOf(0) }).catch(() => null))?.status === 200 ? true : undefined), 10_000);
  return {
    url,
    workerPids: async () => childPids(proc.pid ?? 0),
    async stop() {
      proc.kill('SIGTERM');
      await proc;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startHaproxyNode(apps: readonly BenchApp[]): Promise<RunningRouter> {
  const node = await startHaproxy({ backendPool: Math.max(8, apps.length + 8) });
  const plane = new HaproxyDataPlane({ socket: node.socket }, silent);
  try {
    const applied = await plane.apply({ version: 'peers-1', base: null, apps: Object.fromEntries(apps.map((a) => [a.id, appRoute(a)])) });
    if (!applied.ok) throw new Error(`HAProxy refused the table: ${applied.error}`);
  } catch (err) {
    await plane.close();
    await node.stop();
    throw err;
  }
  return {
    url: node.publicUrl,
    workerPids: async () => [await node.workerPid()],
    async stop() {
      await plane.close();
      await node.stop();
    },
  };
}

async function startNginxRoutingNode(apps: readonly BenchApp[]): Promise<RunningRouter> {
  const nginx = await startNginxNode({ workerProcesses: 2, errorLogLevel: 'warn' });
  try {
    await pushTable(nginx.adminUrl, nginx.adminToken, apps);
  } catch (err) {
    await nginx.process.stop();
    throw err;
  }
  return { url: nginx.publicUrl, workerPids: async () => nginx.process.workerPids(), stop: () => nginx.process.stop() };
}

async function routerCpuMs(router: RunningRouter): Promise<number> {
  let total = 0;
  for (const pid of await router.workerPids()) total += cpuMs(pid);
  return total;
}

export interface PeerFigures {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  /** The router's CPU (user + system, every worker) per request, µs. */
  readonly cpuUsPerRequest: number;
}

/** Measures the three routers side by side over the same apps and backends. */
export async function comparePeers(ctx: BenchContext, ports: readonly number[], appCount = ctx.smoke ? 3 : 100) {
  const rounds = ctx.smoke ? 1 : 9;
  const seconds = ctx.smoke ? 1 : 4;
  const connections = ctx.smoke ? 4 : 50;
  const apps = peerApps(appCount, ports);
  // The measured app sits in the middle of the table, not first in any list.
  const host = hostOf(Math.floor(appCount / 2));
  const started: Partial<Record<Router, RunningRouter>> = {};
  try {
    started.h = await startMarathonLbStyleHaproxy(apps);
    started.n = await startHaproxyNode(apps);
    started.g = await startNginxRoutingNode(apps);
    const routers = started as Record<Router, RunningRouter>;
    for (const key of ROUTERS) {
      const url = `${routers[key].url}${PATH}`;
      await waitFor(`${key} to route ${host}`, async () => ((await httpGet(url, { host })).status === 200 ? true : undefined));
      await runWrk({ url, headers: { ...HEADERS, host }, durationSeconds: 1, connections }); // warm-up
    }
    const runs: Record<Router, WrkResult[]> = { h: [], n: [], g: [] };
    const cpu: Record<Router, number[]> = { h: [], n: [], g: [] };
    for (let r = 0; r < rounds; r++) {
      // h n g, then n g h, then g h n: each router follows each other one equally often.
      const order = ROUTERS.map((_, i) => ROUTERS[(i + r) % ROUTERS.length] as Router);
      for (const key of order) {
        const before = await routerCpuMs(routers[key]);
        const result = await runWrk({ url: `${routers[key].url}${PATH}`, headers: { ...HEADERS, host }, durationSeconds: seconds, connections });
        // Failed requests are cheap: a run with any would flatter the router that fails.
        if (result.failed > 0) throw new Error(`${key}: ${result.failed} of ${result.requests} requests failed; the setup is broken`);
        runs[key].push(result);
        cpu[key].push((((await routerCpuMs(routers[key])) - before) * 1000) / result.requests);
        ctx.progress(`round ${r + 1}/${rounds} ${key}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latency.p99} ms, ${round(cpu[key].at(-1) ?? NaN, 1)} µs CPU per request`);
      }
    }
    const figures = (key: Router): PeerFigures & { rounds: WrkResult[] } => ({
      requestsPerSecond: round(median(runs[key].map((x) => x.requestsPerSecond)), 0),
      p99Ms: round(median(runs[key].map((x) => x.latency.p99))),
      cpuUsPerRequest: round(median(cpu[key]), 2),
      rounds: runs[key],
    });
    // Ratios per round, then the median: both routers of a ratio saw the same minute of a noisy machine.
    const ratio = (a: Router, b: Router) => round(median(runs[a].map((x, i) => x.requestsPerSecond / (runs[b][i]?.requestsPerSecond ?? NaN))));
    const cpuRatio = (a: Router, b: Router) => round(median(cpu[a].map((x, i) => x / (cpu[b][i] ?? NaN))));
    return {
      setup: { apps: appCount, measuredHost: host, rounds, secondsPerRun: seconds, connections, wrkThreads: 2, routerThreads: 2, path: PATH, backends: `nginx return 200, ${ports.length} ports, 1 worker`, order: 'rotated every round: h n g, n g h, g h n' },
      h_plain_haproxy_marathon_lb_style: figures('h'),
      n_edgeroute_haproxy_node: figures('n'),
      g_edgeroute_nginx_node: figures('g'),
      ratio_n_h: ratio('n', 'h'),
      ratio_g_h: ratio('g', 'h'),
      ratio_n_g: ratio('n', 'g'),
      cpu_ratio_n_h: cpuRatio('n', 'h'),
      cpu_ratio_g_h: cpuRatio('g', 'h'),
    };
  } finally {
    for (const key of ROUTERS) await started[key]?.stop();
  }
}

export const peers: Benchmark = {
  name: 'peers',
  description: 'plain HAProxy as marathon-lb runs it, an edgeroute HAProxy node and an edgeroute nginx node, same apps and backends, side by side: requests/s, p99, router CPU per request',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const backends = await startStaticBackends(4);
    try {
      const r = await comparePeers(ctx, backends.ports);
      const h = r.h_plain_haproxy_marathon_lb_style;
      const n = r.n_edgeroute_haproxy_node;
      const g = r.g_edgeroute_nginx_node;
      return {
        summary:
          `${r.setup.apps} apps; req/s plain HAProxy ${h.requestsPerSecond}, edgeroute HAProxy node ${n.requestsPerSecond} (${r.ratio_n_h}), edgeroute nginx node ${g.requestsPerSecond} (${r.ratio_g_h}); ` +
          `p99 ms ${h.p99Ms} / ${n.p99Ms} / ${g.p99Ms}; router CPU per request µs ${h.cpuUsPerRequest} / ${n.cpuUsPerRequest} / ${g.cpuUsPerRequest}`,
        targets: [
          // The node runs a few rules plain HAProxy does not (the Host in a variable, hosts.map, the version header from versions.map, the client's X-Edgeroute-Version removed).
          atLeast('edgeroute HAProxy node / plain HAProxy requests per second', r.ratio_n_h, 0.9),
        ],
        results: r,
      };
    } finally {
      await backends.stop();
    }
  },
};
