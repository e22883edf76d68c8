import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApplyResult, DataPlane, TableChange } from '../../agent/dataplane/data-plane.js';
import { HealthMemory } from '../../agent/control/health-memory.js';
import { DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';
import { Reconciler } from '../../agent/control/reconciler.js';
import { parseAppsListing } from '../../agent/core/marathon-apps.js';
import { waitFor } from '../../agent/sandbox/wait.js';

const silent = pino({ level: 'silent' });

function appJson(id: string, ports: number[]) {
  return {
    id,
    labels: { 'edgeroute.vhosts': `${id.slice(1)}.example.com` },
    portDefinitions: [{ port: 0 }],
    tasks: ports.map((port) => ({ id: `${id.slice(1)}.${port}`, appId: id, host: '127.0.0.1', ports: [port], state: 'TASK_RUNNING', startedAt: '2026-01-01T00:00:00Z' })),
  };
}

/** A fake Marathon and a fake plugin that behaves like the Lua store (base must match). */
function fakes() {
  const state = {
    apps: [appJson('/web', [1001, 1002])] as unknown[],
    fetches: 0,
    appFetches: [] as string[],
    fetchFails: false,
    pushes: [] as TableChange[],
    nginxVersion: null as string | null,
  };
  const deps = {
    fetchApps: async () => {
      state.fetches++;
      await new Promise((r) => setTimeout(r, 5));
      if (state.fetchFails) throw new Error('connect ECONNREFUSED');
      return parseAppsListing(JSON.stringify({ apps: state.apps }));
    },
    fetchApp: async (id: string) => {
      state.appFetches.push(id);
      if (state.fetchFails) throw new Error('connect ECONNREFUSED');
      const app = (state.apps as Array<{ id: string }>).find((a) => a.id === id);
      return app ? { app } : null;
    },
    resolveHosts: async () => new Map<string, string>(),
    dataPlane: {
      name: 'nginx',
      apply: async (body: TableChange): Promise<ApplyResult> => {
        state.pushes.push(body);
        if (body.base !== null && body.base !== state.nginxVersion) return { ok: false, bytes: 0, otherBase: true, error: 'base version does not match', message: 'nginx refused the push (HTTP 409)' };
        state.nginxVersion = body.version;
        return { ok: true, bytes: 0, generation: null };
      },
      status: async () => ({ version: state.nginxVersion, generation: 'g1' }),
      inflight: async () => ({ version: null, settled: false, backends: new Map<string, number>() }),
      release: null,
      holds: () => undefined,
      close: async () => undefined,
    } satisfies DataPlane,
    healthMemory: new HealthMemory(null, 60, silent),
    now: Date.now,
  };
  return { state, deps };
}

const options = { routing: DEFAULT_ROUTING_CONFIG, debounceMs: 10, resyncIntervalMs: 60_000, dataPlaneCheckIntervalMs: 60_000, minRetryMs: 20, maxRetryMs: 100 };
let running: Reconciler | null = null;
afterEach(async () => {
  await running?.stop();
  running = null;
});

describe('Reconciler', () => {
  it('pushes the full table first, then only the apps that changed', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    expect(state.pushes[0]?.base).toBeNull();
    expect(Object.keys(state.pushes[0]?.apps ?? {})).toEqual(['/web']);

    state.apps = [appJson('/web', [1001, 1002]), appJson('/api', [2001])];
    running.requestSync('test');
    await waitFor('second push', () => (state.pushes.length === 2 ? true : undefined));
    expect(state.pushes[1]?.base).toBe(state.pushes[0]?.version);
    expect(Object.keys(state.pushes[1]?.apps ?? {})).toEqual(['/api']);

    state.apps = [appJson('/api', [2001])];
    running.requestSync('test');
    await waitFor('third push', () => (state.pushes.length === 3 ? true : undefined));
    expect(state.pushes[2]?.apps).toEqual({ '/web': null });
  });

  it('coalesces a burst of 100 events into a handful of syncs', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    const fetchesBefore = state.fetches;
    for (let i = 0; i < 100; i++) {
      running.requestSync('status_update_event');
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 3));
    }
    await new Promise((r) => setTimeout(r, 150));
    const syncs = state.fetches - fetchesBefore;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(5);
  });

  it('pushes nothing when a sync changes nothing', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    running.requestSync('no change');
    await waitFor('the sync', () => (state.fetches >= 2 ? true : undefined));
    await new Promise((r) => setTimeout(r, 30));
    expect(state.pushes).toHaveLength(1);
  });

  it('unpublishes drained tasks, and says which drain marks the table in nginx reflects', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    const drains = new Map([['web.1001', 'kill announced by ops@test']]);
    running.setDrains(drains);
    await waitFor('the drain pushed', () => (running?.drainsApplied === drains ? true : undefined));
    const route = state.pushes.at(-1)?.apps['/web'];
    expect(route?.versions.stable?.backends.map((b) => b.id)).toEqual(['web.1002']);
    // A mark on a task this node does not route changes no route, and is reflected all the same.
    const elsewhere = new Map([...drains, ['other.1', 'drain announced by ops@test']]);
    running.setDrains(elsewhere);
    await waitFor('the mark reflected', () => (running?.drainsApplied === elsewhere ? true : undefined));
    expect(state.pushes).toHaveLength(2);
  });

  it('sends the full table when nginx holds another version (restart)', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    state.nginxVersion = null; // nginx restarted with an empty dict
    state.apps = [appJson('/web', [1001])];
    running.requestSync('test');
    await waitFor('full push after 409', () => (state.pushes.length === 3 ? true : undefined));
    expect(state.pushes[1]?.base).not.toBeNull();
    expect(state.pushes[2]?.base).toBeNull();
    expect(state.nginxVersion).toBe(state.pushes[2]?.version);
  });

  it('keeps nginx untouched while Marathon fails, and retries until it answers', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    state.fetchFails = true;
    running.requestSync('test');
    await waitFor('several failed attempts', () => (running!.stats.syncFailures >= 3 ? true : undefined));
    expect(state.pushes).toHaveLength(1);
    state.fetchFails = false;
    state.apps = [appJson('/web', [1003])];
    await waitFor('recovery push', () => (state.pushes.length === 2 ? true : undefined), 5_000);
  });
});

describe('Reconciler, incremental', () => {
  it('re-reads only the apps an event names, and pushes only what changed', async () => {
    const { state, deps } = fakes();
    state.apps = [appJson('/web', [1001]), appJson('/api', [2001])];
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    const fullFetches = state.fetches;

    state.apps = [appJson('/web', [1001, 1002]), appJson('/api', [2001])];
    running.requestAppSync(['/web'], 'status_update_event');
    await waitFor('second push', () => (state.pushes.length === 2 ? true : undefined));
    expect(state.fetches).toBe(fullFetches);
    expect(state.appFetches).toEqual(['/web']);
    expect(Object.keys(state.pushes[1]?.apps ?? {})).toEqual(['/web']);
    expect(running.stats.lastSync).toMatchObject({ full: false, appsFetched: 1 });

    state.apps = [appJson('/web', [1001, 1002])];
    running.requestAppSync(['/api'], 'app_terminated_event');
    await waitFor('third push', () => (state.pushes.length === 3 ? true : undefined));
    expect(state.pushes[2]?.apps).toEqual({ '/api': null });
  });
});

describe('Reconciler, task ends from events', () => {
  it('takes a task Marathon is killing out at once, before any read and without the debounce, and keeps it out of reads older than the event', async () => {
    const { state, deps } = fakes();
    const readsAtPush: number[] = [];
    const apply = deps.dataPlane.apply;
    deps.dataPlane.apply = async (body) => {
      readsAtPush.push(state.appFetches.length);
      return apply(body);
    };
    // A long debounce: the end must not wait for it, nor for the re-read of its app.
    running = new Reconciler(deps, { ...options, debounceMs: 400 }, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    running.requestAppSync(['/web'], 'deployment_info');
    running.taskEnded({ appId: '/web', taskId: 'web.1001', state: 'TASK_KILLING' }, 'status_update_event TASK_KILLING');
    await waitFor('the end pushed', () => (state.pushes.length === 2 ? true : undefined));
    expect(state.pushes[1]?.apps['/web']?.versions.stable?.backends.map((b) => b.id)).toEqual(['web.1002']);
    expect(readsAtPush[1]).toBe(0);
    expect(running.statusesOf('/web').find((s) => s.taskId === 'web.1001')?.state).toBe('draining');

    // The re-read after: this Marathon still lists the task running (its answer older than the event): it stays out.
    await waitFor('the re-read', () => (state.appFetches.length >= 1 ? true : undefined), 3_000);
    running.requestAppSync(['/web'], 'status_update_event');
    await waitFor('a second re-read', () => (state.appFetches.length >= 2 ? true : undefined), 3_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(state.pushes).toHaveLength(2);

    // Once Marathon no longer lists it, the mark is forgotten; a new task of the app is published as usual.
    state.apps = [appJson('/web', [1002, 1003])];
    running.requestAppSync(['/web'], 'status_update_event');
    await waitFor('the new task pushed', () => (state.pushes.length === 3 ? true : undefined), 3_000);
    expect(state.pushes[2]?.apps['/web']?.versions.stable?.backends.map((b) => b.id)).toEqual(['web.1002', 'web.1003']);
  });

  it('ignores an end for a task it does not hold, and forgets it at the read of its app', async () => {
    const { state, deps } = fakes();
    running = new Reconciler(deps, options, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    running.taskEnded({ appId: '/other', taskId: 'other.1', state: 'TASK_KILLED' }, 'status_update_event TASK_KILLED');
    await waitFor('the read of /other', () => (state.appFetches.includes('/other') ? true : undefined), 3_000);
    await new Promise((r) => setTimeout(r, 30));
    expect(state.pushes).toHaveLength(1);
  });
});

describe('Reconciler, host names', () => {
  it('resolves the host names of running tasks of an app routed by its marathon-lb labels', async () => {
    const { state, deps } = fakes();
    state.apps = [
      {
        id: '/legacy',
        labels: { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'legacy.example.com' },
        portDefinitions: [{ port: 10001 }],
        tasks: [{ id: 'legacy.1', appId: '/legacy', host: 'agent-1.test', ports: [31001], state: 'TASK_RUNNING', startedAt: '2026-01-01T00:00:00Z' }],
      },
    ];
    const asked: string[] = [];
    deps.resolveHosts = async (names: Iterable<string>) => {
      asked.push(...names);
      return new Map([['agent-1.test', '10.1.2.3']]);
    };
    running = new Reconciler(deps, { ...options, routing: { ...DEFAULT_ROUTING_CONFIG, group: '*', marathonLbLabels: true } }, silent);
    running.start();
    await waitFor('first push', () => (state.pushes.length === 1 ? true : undefined));
    expect(asked).toEqual(['agent-1.test']);
    expect(state.pushes[0]?.apps['/legacy']?.versions.stable?.backends).toEqual([{ id: 'legacy.1', address: '10.1.2.3', port: 31001, weight: 100 }]);
  });
});
