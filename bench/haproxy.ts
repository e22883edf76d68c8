/**
 * HAProxy routing nodes, two measurements (the data path against plain
 * HAProxy and an nginx node is the peers benchmark's):
 * - publication latency on an HAProxy node (the publication benchmark's
 *   scale-up and kill loop, with the agent on --haproxy-socket);
 * - a whole table of 10,000 apps and 100,000 tasks applied to HAProxy
 *   through its runtime API: time, commands' bytes, worker memory, and the
 *   median time of one task change after it (20 changes, one app each).
 */
import { pino } from 'pino';
import { HaproxyDataPlane } from '../agent/dataplane/haproxy/haproxy-data-plane.js';
import type { AppRoute } from '../agent/core/routing-table.js';
import { hashString } from '../agent/core/hash.js';
import { httpGet } from '../agent/sandbox/http-get.js';
import { startHaproxy, type HaproxyProcess } from '../test/helpers/haproxy-node.js';
import { atMost, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';
import { startStaticBackends } from './lib/nginx-fixtures.js';
import { memoryMb } from './lib/proc.js';
import { latencyStats, measurePublication } from './publication.js';

const silent = pino({ level: 'silent' });

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
    // One task more on one app at a time: what a deploy or a scale costs once the table is there.
    const changeTimes: number[] = [];
    const changes = ctx.smoke ? 3 : 20;
    for (let i = 0; i < changes; i++) {
      const id = `/scale/app-${(i * 487) % apps}`;
      const grown = routes[id]!;
      const stable = grown.versions['stable']!;
      const more = { ...grown, versions: { stable: { ...stable, backends: [...stable.backends, { id: `scale_app-${(i * 487) % apps}.task-new-${i}`, address: '127.0.0.1', port: ports[0] as number, weight: 100 }] } } };
      const route = { ...more, hash: hashString(JSON.stringify(more)) };
      routes[id] = route;
      const changeStarted = performance.now();
      const changed = await plane.apply({ version: `scale-${i + 2}`, base: `scale-${i + 1}`, apps: { [id]: route } });
      changeTimes.push(performance.now() - changeStarted);
      if (!changed.ok) throw new Error(`HAProxy refused the change: ${changed.error}`);
    }
    const added = await httpGet(`${node.publicUrl}/`, { host: 'app-0.scale.bench' });
    if (added.status !== 200) throw new Error(`app-0.scale.bench answered ${added.status} after the changes`);
    return {
      apps,
      tasks: apps * tasks,
      fullApplyMs: round(fullMs, 0),
      fullApplyBytes: applied.bytes,
      oneTaskChanges: changes,
      oneTaskChangeMs: round(median(changeTimes), 1),
      oneTaskChangeMaxMs: round(Math.max(...changeTimes), 1),
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
  description: 'HAProxy nodes: publication latency; 10,000 apps / 100,000 tasks applied through the runtime API (requests/s against plain HAProxy: the peers benchmark)',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const backends = await startStaticBackends(4);
    try {
      ctx.progress('publication');
      const publication = await publicationOnHaproxy(ctx);
      ctx.progress('whole table');
      const table = await wholeTable(ctx, backends.ports);
      const results = { publication, wholeTable: table };
      return {
        summary:
          `publish p50 ${publication.publish.p50Ms} ms, p99 ${publication.publish.p99Ms} ms, unpublish p99 ${publication.unpublish.p99Ms} ms; ` +
          `${table.apps} apps / ${table.tasks} tasks applied in ${table.fullApplyMs} ms, one task change ${table.oneTaskChangeMs} ms median (max ${table.oneTaskChangeMaxMs}), worker RSS ${table.workerRssMb.after} MB`,
        targets: [
          atMost('HAProxy publish p99 ms', publication.publish.p99Ms, 50),
          atMost('HAProxy unpublish p99 ms', publication.unpublish.p99Ms, 15),
          atMost('one task change after a 10,000-app table, ms (median)', table.oneTaskChangeMs, 10),
        ],
        results,
      };
    } finally {
      await backends.stop();
    }
  },
};
