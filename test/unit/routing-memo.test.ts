// The incremental computation must always equal computing from scratch.
import { describe, expect, it } from 'vitest';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, RoutingMemo, type RoutingInput } from '../../agent/core/routing-table.js';
import { diffTables } from '../../agent/core/table-diff.js';
import type { MarathonApp, MarathonTask } from '../../agent/core/marathon-types.js';

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

describe('RoutingMemo', () => {
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
