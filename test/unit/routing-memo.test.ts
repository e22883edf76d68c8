// The incremental computation must always equal computing from scratch.
import { describe, expect, it } from 'vitest';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, RoutingMemo, type RoutingInput, type RoutingTable } from '../../agent/core/routing-table.js';
import { diffTables } from '../../agent/core/table-diff.js';
import type { MarathonApp, MarathonTask } from '../../agent/core/marathon-types.js';
import type { RememberedHealth } from '../../agent/core/lifecycle.js';

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const NOW = Date.parse('2026-11-01T01:00:00.000Z');

function makeApp(rand: () => number, id: string, generation: number): MarathonApp {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const labels: Record<string, string> = { 'edgeroute.vhosts': [pick(['a', 'b', 'c', 'd']), pick(['a', 'e', '*.w'])].map((h) => `${h}.test`).join(',') };
  if (rand() < 0.5) labels['edgeroute.app'] = pick(['shop', 'blog']);
  if (rand() < 0.5) labels['edgeroute.version'] = pick(['stable', 'grey', 'blue']);
  if (rand() < 0.1) labels['edgeroute.portIndex'] = 'bad';
  if (rand() < 0.2) labels['edgeroute.publishDelaySeconds'] = '30';
  const tasks: MarathonTask[] = Array.from({ length: Math.floor(rand() * 4) }, (_, i) => ({
    id: `${id.slice(1)}.g${generation}.t${i}`,
    appId: id,
    host: '10.0.0.1',
    state: pick(['TASK_RUNNING', 'TASK_RUNNING', 'TASK_KILLING', 'TASK_STAGING']),
    ports: [31000 + i],
    ipAddresses: [],
    startedAt: new Date(NOW - Math.floor(rand() * 60_000)).toISOString(),
    stagedAt: null,
    version: null,
    healthCheckResults: [],
  }));
  return { id, labels, instances: tasks.length, networkMode: 'host', ports: [{ containerPort: null, hostPort: 0, name: null }], healthCheckCount: 0, taskKillGracePeriodSeconds: null, version: null, tasks };
}

function input(apps: ReadonlyMap<string, MarathonApp>, now: number, drains: ReadonlyMap<string, string> = new Map()): RoutingInput {
  return { snapshot: { apps: [...apps.values()] }, config: { ...DEFAULT_ROUTING_CONFIG }, hostAddresses: new Map(), healthMemory: new Map(), now, drains };
}

/** Drains a few random tasks, or changes nothing; a new map only when the marks change, as the agent does. */
function nextDrains(rand: () => number, apps: ReadonlyMap<string, MarathonApp>, drains: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  if (rand() < 0.6) return drains;
  const next = new Map(drains);
  const tasks = [...apps.values()].flatMap((app) => app.tasks.map((task) => task.id));
  if (tasks.length > 0 && rand() < 0.6) next.set(tasks[Math.floor(rand() * tasks.length)] as string, rand() < 0.5 ? 'kill by ops' : 'drain by ops');
  else for (const task of next.keys()) if (rand() < 0.5) next.delete(task);
  return next;
}

/** Host names some tasks run on, and the addresses they resolve to (a new map when one changes, as the agent does). */
const HOST_NAMES = ['node-1.test', 'node-2.test'];

function nextHostAddresses(rand: () => number, hosts: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  if (rand() < 0.8) return hosts;
  const next = new Map(hosts);
  const name = HOST_NAMES[Math.floor(rand() * HOST_NAMES.length)] as string;
  if (rand() < 0.3) next.delete(name);
  else next.set(name, `10.0.1.${Math.floor(rand() * 3)}`);
  return next;
}

/** Like makeApp, plus what makes verdicts lean on more than the app: host names, health checks without results, remembered health. */
function makeVariedApp(rand: () => number, id: string, generation: number): MarathonApp {
  const app = makeApp(rand, id, generation);
  const checks = rand() < 0.3;
  const tasks = app.tasks.map((task) => ({
    ...task,
    host: rand() < 0.3 ? (HOST_NAMES[Math.floor(rand() * HOST_NAMES.length)] as string) : task.host,
    healthCheckResults: checks && rand() < 0.5 ? [{ alive: rand() < 0.8, firstSuccess: task.startedAt }] : [],
  }));
  return { ...app, healthCheckCount: checks ? 1 : 0, tasks };
}

describe('RoutingMemo', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])('told which apps changed, equals a fresh computation after every random change (seed %i)', (seed) => {
    const rand = random(seed * 7919);
    const ids = ['/a1', '/a2', '/a3', '/a4', '/a5', '/a6', '/a7', '/a8', '/a9', '/a10'];
    const apps = new Map<string, MarathonApp>();
    const memo = new RoutingMemo();
    let snapshot = { apps: [] as MarathonApp[] };
    let hosts: ReadonlyMap<string, string> = new Map([['node-1.test', '10.0.1.1']]);
    let drains: ReadonlyMap<string, string> = new Map();
    const health = new Map<string, RememberedHealth>();
    let previous = computeRoutingTable({ ...input(apps, NOW), snapshot, hostAddresses: hosts }, memo).table;
    for (let step = 0; step < 200; step++) {
      const changed = new Map<string, MarathonApp | null>();
      for (let n = Math.floor(rand() * 3); n >= 0; n--) {
        const id = ids[Math.floor(rand() * ids.length)] as string;
        if (rand() < 0.2) {
          apps.delete(id);
          changed.set(id, null);
        } else if (rand() < 0.8) {
          const app = makeVariedApp(rand, id, step);
          apps.set(id, app);
          changed.set(id, app);
        }
      }
      // Sometimes an app named as changed is the same object (an event for an app that did not change).
      if (rand() < 0.2 && apps.size > 0) {
        const [id, app] = [...apps][Math.floor(rand() * apps.size)] as [string, MarathonApp];
        changed.set(id, app);
      }
      drains = nextDrains(rand, apps, drains);
      hosts = nextHostAddresses(rand, hosts);
      // Remembered health changes in place, as the agent's memory does (those apps are judged every time).
      const tasks = [...apps.values()].flatMap((app) => app.tasks);
      if (tasks.length > 0 && rand() < 0.3) health.set((tasks[Math.floor(rand() * tasks.length)] as MarathonTask).id, { healthy: rand() < 0.7, since: new Date(NOW - 5000).toISOString() });
      const now = NOW + step * 1000;
      const next = { apps: [...apps.values()] };
      // Now and then no changes, or changes against another snapshot than the memo's: it must compare every app then.
      const told = rand() < 0.1 ? undefined : { since: rand() < 0.05 ? { apps: snapshot.apps } : snapshot, apps: changed };
      snapshot = next;
      const base = { ...input(apps, now, drains), snapshot, hostAddresses: hosts, healthMemory: health };
      const incremental = computeRoutingTable({ ...base, ...(told ? { changes: told } : {}) }, memo);
      const fresh = computeRoutingTable({ ...base, healthMemory: new Map(health), hostAddresses: new Map(hosts) });
      const context = `seed ${seed}, step ${step}`;
      expect(incremental.table, context).toEqual(fresh.table);
      expect(incremental.problems, context).toEqual(fresh.problems);
      expect(incremental.backends, context).toEqual(fresh.backends);
      expect(incremental.nextChangeAt, context).toEqual(fresh.nextChangeAt);
      const diff = diffTables(previous, incremental.table);
      expect(new Set(incremental.changes.upserts.map((a) => a.id)), context).toEqual(new Set(diff.upserts.map((a) => a.id)));
      expect(new Set(incremental.changes.removals), context).toEqual(new Set(diff.removals));
      previous = incremental.table;
    }
  });

  it('builds each table right when read rarely, long after, and out of order', () => {
    const rand = random(99);
    const ids = Array.from({ length: 40 }, (_, i) => `/c${i}`);
    const apps = new Map<string, MarathonApp>();
    const memo = new RoutingMemo();
    const kept: Array<{ table: RoutingTable; expected: RoutingTable['apps'] }> = [];
    for (let step = 0; step < 400; step++) {
      for (let n = Math.floor(rand() * 3); n >= 0; n--) {
        const id = ids[Math.floor(rand() * ids.length)] as string;
        if (rand() < 0.2) apps.delete(id);
        else apps.set(id, makeApp(rand, id, step));
      }
      const now = NOW + step * 1000;
      const table = computeRoutingTable(input(apps, now), memo).table;
      // Only some tables are kept to be read, and only later: the others are never read.
      if (rand() < 0.1) kept.push({ table, expected: computeRoutingTable(input(apps, now)).table.apps });
      if (rand() < 0.03 && kept.length > 0) {
        const pick = kept.splice(Math.floor(rand() * kept.length), 1)[0]!;
        expect(pick.table.apps, `step ${step}`).toEqual(pick.expected);
      }
    }
    for (const { table, expected } of kept.reverse()) expect(table.apps).toEqual(expected);
  });

  it('told which apps changed, judges only those (and none of the 2,000 others)', () => {
    const rand = random(42);
    const apps = new Map<string, MarathonApp>();
    for (let i = 0; i < 2000; i++) apps.set(`/b${i}`, makeApp(rand, `/b${i}`, 0));
    // Every other app's tasks published long ago and no delay: nothing leans on the clock.
    for (const [id, app] of apps) apps.set(id, { ...app, labels: { 'edgeroute.vhosts': `${id.slice(1)}.test` } });
    const memo = new RoutingMemo();
    const hosts = new Map<string, string>();
    let snapshot = { apps: [...apps.values()] };
    computeRoutingTable({ ...input(apps, NOW), snapshot, hostAddresses: hosts }, memo);
    const reads: string[] = [];
    const watched = new Map([...apps].map(([id, app]) => [id, new Proxy(app, { get: (target, key) => (key === 'tasks' && reads.push(id), Reflect.get(target, key)) })]));
    const changedApp = makeApp(rand, '/b7', 1);
    const next = new Map(watched).set('/b7', { ...changedApp, labels: { 'edgeroute.vhosts': 'b7.test' } });
    const since = snapshot;
    snapshot = { apps: [...next.values()] };
    const result = computeRoutingTable({ ...input(next, NOW), snapshot, hostAddresses: hosts, changes: { since, apps: new Map([['/b7', next.get('/b7') as MarathonApp]]) } }, memo);
    expect(reads).toEqual([]);
    expect(result.changes.upserts.map((a) => a.id)).toEqual(['/b7']);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('equals a fresh computation after every random change (seed %i)', (seed) => {
    const rand = random(seed);
    const ids = ['/a1', '/a2', '/a3', '/a4', '/a5', '/a6', '/a7', '/a8'];
    const apps = new Map<string, MarathonApp>();
    const memo = new RoutingMemo();
    let previous = computeRoutingTable(input(apps, NOW), memo).table;
    let drains: ReadonlyMap<string, string> = new Map();
    for (let step = 0; step < 150; step++) {
      const id = ids[Math.floor(rand() * ids.length)] as string;
      if (rand() < 0.2) apps.delete(id);
      else if (rand() < 0.8) apps.set(id, makeApp(rand, id, step));
      drains = nextDrains(rand, apps, drains);
      const now = NOW + step * 1000;
      const incremental = computeRoutingTable(input(apps, now, drains), memo);
      const fresh = computeRoutingTable(input(apps, now, drains));
      const context = `seed ${seed}, step ${step}`;
      expect(incremental.table, context).toEqual(fresh.table);
      expect(incremental.problems, context).toEqual(fresh.problems);
      expect(incremental.backends, context).toEqual(fresh.backends);
      expect(incremental.nextChangeAt, context).toEqual(fresh.nextChangeAt);
      // What it says changed is exactly the difference from the previous table.
      const diff = diffTables(previous, incremental.table);
      expect(incremental.changes.since, context).toBe(previous);
      expect(new Set(incremental.changes.upserts.map((a) => a.id)), context).toEqual(new Set(diff.upserts.map((a) => a.id)));
      expect(new Set(incremental.changes.removals), context).toEqual(new Set(diff.removals));
      previous = incremental.table;
    }
  });
});
