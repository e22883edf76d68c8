import { describe, expect, it } from 'vitest';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG, type RoutingInput } from '../../agent/core/routing-table.js';
import { diffTables } from '../../agent/core/table-diff.js';
import type { MarathonApp, MarathonTask } from '../../agent/core/marathon-types.js';

function task(id: string, over: Partial<MarathonTask> = {}): MarathonTask {
  return {
    id,
    appId: '/web',
    host: '10.0.0.1',
    state: 'TASK_RUNNING',
    ports: [31000],
    ipAddresses: [],
    startedAt: '2026-11-01T00:00:00.000Z',
    stagedAt: '2026-11-01T00:00:00.000Z',
    version: null,
    healthCheckResults: [],
    ...over,
  };
}

function app(id: string, labels: Record<string, string>, tasks: MarathonTask[], over: Partial<MarathonApp> = {}): MarathonApp {
  return {
    id,
    labels,
    instances: tasks.length,
    networkMode: 'host',
    ports: [{ containerPort: null, hostPort: 0, name: 'http' }],
    healthCheckCount: 0,
    taskKillGracePeriodSeconds: null,
    version: null,
    tasks,
    ...over,
  };
}

function input(apps: MarathonApp[], group: string | null = null, hosts: Record<string, string> = {}): RoutingInput {
  return {
    snapshot: { apps },
    config: { ...DEFAULT_ROUTING_CONFIG, group },
    hostAddresses: new Map(Object.entries(hosts)),
    healthMemory: new Map(),
    now: Date.parse('2026-11-01T01:00:00.000Z'),
  };
}

const web = app('/web', { 'edgeroute.vhosts': 'web.example.com' }, [task('web.1', { ports: [31001] }), task('web.2', { ports: [31002] })]);
const api = app('/api', { 'edgeroute.vhosts': 'api.example.com,*.api.example.com' }, [task('api.1', { appId: '/api', ports: [32001] })]);

describe('computeRoutingTable', () => {
  it('routes running tasks of labelled apps by host', () => {
    const { table, problems } = computeRoutingTable(input([web, api]));
    expect(problems).toEqual([]);
    expect(Object.keys(table.apps).sort()).toEqual(['/api', '/web']);
    expect(table.apps['/web']).toMatchObject({
      vhosts: ['web.example.com'],
      defaultVersion: 'stable',
      versions: {
        stable: {
          marathonAppId: '/web',
          backends: [
            { id: 'web.1', address: '10.0.0.1', port: 31001, weight: 100 },
            { id: 'web.2', address: '10.0.0.1', port: 31002, weight: 100 },
          ],
        },
      },
    });
  });

  it('gives the same table, version and hashes whatever the input order', () => {
    const a = computeRoutingTable(input([web, api])).table;
    const reversedTasks = app('/web', web.labels, [...web.tasks].reverse());
    const b = computeRoutingTable(input([api, reversedTasks])).table;
    expect(b).toEqual(a);
  });

  it.each([
    ['TASK_STAGING', 0],
    ['TASK_STARTING', 0],
    ['TASK_KILLING', 0],
    ['TASK_KILLED', 0],
    ['TASK_RUNNING', 1],
  ])('a %s task gives %i backend(s)', (state, count) => {
    const { table } = computeRoutingTable(input([app('/web', web.labels, [task('t', { state })])]));
    expect(table.apps['/web']?.versions.stable?.backends).toHaveLength(count);
  });

  it('keeps an app with no running task, so nginx answers 503 rather than 404', () => {
    const { table } = computeRoutingTable(input([app('/web', web.labels, [])]));
    expect(table.apps['/web']?.versions.stable?.backends).toEqual([]);
  });

  it('skips an app with a bad label with one problem naming it, and routes the rest', () => {
    const bad = app('/bad', { 'edgeroute.vhosts': 'bad..example.com' }, [task('bad.1')]);
    const { table, problems } = computeRoutingTable(input([bad, web]));
    expect(Object.keys(table.apps)).toEqual(['/web']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ appId: '/bad' });
    expect(problems[0]?.message).toContain('bad..example.com');
  });

  it('skips an app whose port index it does not declare', () => {
    const bad = app('/bad', { 'edgeroute.vhosts': 'bad.example.com', 'edgeroute.portIndex': '3' }, [task('bad.1')]);
    const { table, problems } = computeRoutingTable(input([bad, web]));
    expect(table.apps['/bad']).toBeUndefined();
    expect(problems[0]?.message).toContain('edgeroute.portIndex=3 but the app declares 1 port(s)');
  });

  it('skips an app whose running tasks have no port at the index', () => {
    const bad = app('/bad', { 'edgeroute.vhosts': 'bad.example.com', 'edgeroute.portIndex': '1' }, [task('bad.1')], { ports: [] });
    const { table, problems } = computeRoutingTable(input([bad]));
    expect(table.apps['/bad']).toBeUndefined();
    expect(problems[0]?.message).toContain('no usable port');
  });

  it('uses the port at edgeroute.portIndex', () => {
    const two = app('/two', { 'edgeroute.vhosts': 'two.example.com', 'edgeroute.portIndex': '1' }, [task('two.1', { ports: [31000, 31999] })], {
      ports: [
        { containerPort: null, hostPort: 0, name: 'admin' },
        { containerPort: null, hostPort: 0, name: 'http' },
      ],
    });
    expect(computeRoutingTable(input([two])).table.apps['/two']?.versions.stable?.backends[0]?.port).toBe(31999);
  });

  it('uses the task IP and container port with container networking', () => {
    const c = app('/c', { 'edgeroute.vhosts': 'c.example.com' }, [task('c.1', { ports: [], ipAddresses: ['172.17.0.5'] })], {
      networkMode: 'container',
      ports: [{ containerPort: 8080, hostPort: null, name: 'http' }],
    });
    expect(computeRoutingTable(input([c])).table.apps['/c']?.versions.stable?.backends[0]).toMatchObject({ address: '172.17.0.5', port: 8080 });
  });

  it('resolves host names through the given map and reports unresolved ones', () => {
    const named = app('/n', { 'edgeroute.vhosts': 'n.example.com' }, [task('n.1', { host: 'agent-1.dc' }), task('n.2', { host: 'agent-2.dc' })]);
    const { table, problems } = computeRoutingTable(input([named], null, { 'agent-1.dc': '10.1.1.1' }));
    expect(table.apps['/n']?.versions.stable?.backends.map((b) => b.address)).toEqual(['10.1.1.1']);
    expect(problems[0]?.message).toContain('agent-2.dc has no known address');
  });

  it('routes only its own group', () => {
    const grouped = app('/g', { 'edgeroute.vhosts': 'g.example.com', 'edgeroute.group': 'edge-a' }, [task('g.1')]);
    expect(Object.keys(computeRoutingTable(input([grouped, web])).table.apps)).toEqual(['/web']);
    expect(Object.keys(computeRoutingTable(input([grouped, web], 'edge-a')).table.apps)).toEqual(['/g']);
  });

  it('routes an app in several groups for each, several groups at once, or every app with "*"', () => {
    const both = app('/both', { 'edgeroute.vhosts': 'both.example.com', 'edgeroute.group': 'internal,external' }, [task('b.1')]);
    const internal = app('/int', { 'edgeroute.vhosts': 'int.example.com', 'edgeroute.group': 'internal' }, [task('i.1')]);
    const routed = (group: string | null) => Object.keys(computeRoutingTable(input([both, internal, web], group)).table.apps).sort();
    expect(routed('external')).toEqual(['/both']);
    expect(routed('internal')).toEqual(['/both', '/int']);
    expect(routed('external,other')).toEqual(['/both']);
    expect(routed('*')).toEqual(['/both', '/int', '/web']);
    expect(routed(null)).toEqual(['/web']);
  });

  it('gives a contested host name to the first app by id only', () => {
    const other = app('/zz', { 'edgeroute.vhosts': 'web.example.com,zz.example.com' }, [task('zz.1')]);
    const { table, problems } = computeRoutingTable(input([other, web]));
    expect(table.apps['/web']?.vhosts).toEqual(['web.example.com']);
    expect(table.apps['/zz']?.vhosts).toEqual(['zz.example.com']);
    expect(problems[0]?.message).toContain('host web.example.com is already routed to app /web');
  });

  it('groups Marathon apps into versions of one logical app', () => {
    const stable = app('/shop-v1', { 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.app': 'shop' }, [task('v1.1')]);
    const grey = app('/shop-v2', { 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.app': 'shop', 'edgeroute.version': 'grey' }, [task('v2.1')]);
    const { table, problems } = computeRoutingTable(input([grey, stable]));
    expect(problems).toEqual([]);
    expect(Object.keys(table.apps)).toEqual(['shop']);
    expect(Object.keys(table.apps.shop?.versions ?? {})).toEqual(['grey', 'stable']);
    expect(table.apps.shop?.defaultVersion).toBe('stable');
  });

  it('without a stable version, defaults to the first version that has a backend', () => {
    const v1 = app('/shop-v1', { 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.app': 'shop', 'edgeroute.version': 'v2' }, [task('v1.1')]);
    const starting = app('/shop-v2', { 'edgeroute.vhosts': 'shop.example.com', 'edgeroute.app': 'shop', 'edgeroute.version': 'v1' }, [task('v2.1', { state: 'TASK_STAGING' })]);
    expect(computeRoutingTable(input([v1, starting])).table.apps.shop?.defaultVersion).toBe('v2');
    const alone = computeRoutingTable(input([starting])).table.apps.shop;
    expect(alone?.defaultVersion).toBe('v1');
  });
});

describe('diffTables', () => {
  it('names only the apps whose routes changed', () => {
    const before = computeRoutingTable(input([web, api])).table;
    const scaled = app('/web', web.labels, [...web.tasks, task('web.3', { ports: [31003] })]);
    const after = computeRoutingTable(input([scaled])).table;
    const diff = diffTables(before, after);
    expect(diff.upserts.map((a) => a.id)).toEqual(['/web']);
    expect(diff.removals).toEqual(['/api']);
    expect(after.version).not.toBe(before.version);
  });

  it('sends everything against an unknown table', () => {
    const table = computeRoutingTable(input([web, api])).table;
    expect(diffTables(null, table).upserts).toHaveLength(2);
  });
});

describe('computeRoutingTable with the publication lifecycle', () => {
  const now = Date.parse('2026-11-01T01:00:00.000Z');
  const started = (msAgo: number) => new Date(now - msAgo).toISOString();

  it('routes only published and warming backends, and reports every task with its reason', () => {
    const lifecycle = app(
      '/life',
      { 'edgeroute.vhosts': 'life.example.com', 'edgeroute.publishDelaySeconds': '30', 'edgeroute.warmupSeconds': '60' },
      [
        task('old', { startedAt: started(600_000) }),
        task('warm', { startedAt: started(60_000) }),
        task('new', { startedAt: started(10_000) }),
        task('dying', { state: 'TASK_KILLING', startedAt: started(600_000) }),
        task('gone', { state: 'TASK_KILLED' }),
      ],
    );
    const result = computeRoutingTable({ ...input([lifecycle]), now });
    expect(result.table.apps['/life']?.versions.stable?.backends).toEqual([
      { id: 'old', address: '10.0.0.1', port: 31000, weight: 100 },
      { id: 'warm', address: '10.0.0.1', port: 31000, weight: 50 },
    ]);
    expect(result.backends.map((b) => [b.taskId, b.state, b.reason])).toEqual([
      ['dying', 'draining', 'draining: Marathon is killing the task'],
      ['new', 'waiting', 'waiting 20 s of publish delay'],
      ['old', 'published', 'published'],
      ['warm', 'warming', 'warming: 50% of 60 s'],
    ]);
    // The next change: the warm-up steps in a second, before the delay of "new" ends.
    expect(result.nextChangeAt).toBe(now + 1000);
  });

  it('uses the agent defaults when the labels say nothing', () => {
    const plainApp = app('/p', { 'edgeroute.vhosts': 'p.example.com' }, [task('p1', { startedAt: started(5_000) })]);
    const result = computeRoutingTable({ ...input([plainApp]), now, config: { ...DEFAULT_ROUTING_CONFIG, defaultPublishDelaySeconds: 10 } });
    expect(result.table.apps['/p']?.versions.stable?.backends).toEqual([]);
    expect(result.nextChangeAt).toBe(now + 5_000);
  });
});

describe('RoutingMemo', () => {
  it('gives the same result as computing from scratch, reusing unchanged routes', async () => {
    const { RoutingMemo } = await import('../../agent/core/routing-table.js');
    const memo = new RoutingMemo();
    const first = computeRoutingTable(input([web, api]), memo);
    const scaled = app('/web', web.labels, [...web.tasks, task('web.3', { ports: [31003] })]);
    const base = input([scaled, api]);
    const withMemo = computeRoutingTable(base, memo);
    const fresh = computeRoutingTable(base);
    expect(withMemo.table).toEqual(fresh.table);
    expect(withMemo.backends).toEqual(fresh.backends);
    expect(withMemo.problems).toEqual(fresh.problems);
    expect(withMemo.table.apps['/api']).toBe(first.table.apps['/api']);
    expect(withMemo.table.apps['/web']).not.toBe(first.table.apps['/web']);
  });

  it('judges clock-dependent apps afresh', async () => {
    const { RoutingMemo } = await import('../../agent/core/routing-table.js');
    const memo = new RoutingMemo();
    const now = Date.parse('2026-11-01T01:00:00.000Z');
    const delayed = app('/d', { 'edgeroute.vhosts': 'd.example.com', 'edgeroute.publishDelaySeconds': '10' }, [task('d1', { startedAt: new Date(now - 5_000).toISOString() })]);
    const early = computeRoutingTable({ ...input([delayed]), now }, memo);
    const later = computeRoutingTable({ ...input([delayed]), now: now + 6_000 }, memo);
    expect(early.table.apps['/d']?.versions.stable?.backends).toEqual([]);
    expect(later.table.apps['/d']?.versions.stable?.backends).toHaveLength(1);
  });
});
