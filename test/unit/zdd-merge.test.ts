// zdd.py's blue/green pairs read by their marathon-lb labels: one app, both
// colours' tasks, the old colour's first tasks by id drained as the new
// colour's become healthy, with marathon-lb's own count (get_apps). The
// fixture is marathon-lb's own tests/zdd_apps.json, and the expectation its
// test_zdd_app's: of the old colour's three tasks, the first by id is
// disabled ("drained" here) once the new colour has one healthy task.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAppsResponse } from '../../agent/core/marathon-apps.js';
import { migrationReport } from '../../agent/core/migration-report.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';
import type { MarathonApp, MarathonSnapshot, MarathonTask } from '../../agent/core/marathon-types.js';

const { snapshot } = parseAppsResponse(JSON.parse(readFileSync('test/fixtures/marathon/marathon-lb/zdd_apps.json', 'utf8')));
const blue = snapshot.apps.find((a) => a.id === '/nginx-blue') as MarathonApp;
const green = snapshot.apps.find((a) => a.id === '/nginx-green') as MarathonApp;

const route = (apps: readonly MarathonApp[], marathonLbLabels = true) =>
  computeRoutingTable({
    snapshot: { apps } as MarathonSnapshot,
    config: { ...DEFAULT_ROUTING_CONFIG, group: 'external', marathonLbLabels },
    hostAddresses: new Map(),
    healthMemory: new Map(),
    now: Date.parse('2016-02-02T00:00:00.000Z'),
  });

const endpoints = (apps: readonly MarathonApp[]) => route(apps).table.apps.nginx?.versions.stable?.backends.map((b) => `${b.address}:${b.port}`);

/** A blue task like the fixture's, healthy. */
function blueTask(n: number): MarathonTask {
  const first = blue.tasks[0] as MarathonTask;
  return { ...first, id: `nginx-blue.${n}`, ports: [26000 + n] };
}

describe('zdd blue/green pairs (marathon-lb labels)', () => {
  it('serves both colours as one app, the old colour\'s first task by id drained, as marathon-lb does', () => {
    const { table, problems, statusesOf } = route(snapshot.apps);
    expect(problems).toEqual([]);
    expect(Object.keys(table.apps)).toEqual(['nginx']);
    expect(table.apps.nginx).toMatchObject({ vhosts: [], tcpPort: 10000, defaultVersion: 'stable', versions: { stable: { marathonAppId: '/nginx-blue' } } });
    expect(endpoints(snapshot.apps)).toEqual(['10.0.6.25:16916', '10.0.6.25:23336', '10.0.1.147:25724']);
    const drained = statusesOf('nginx').filter((s) => s.state === 'draining');
    expect(drained.map((s) => [s.taskId, s.port])).toEqual([['nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f', 31184]]);
    expect(drained[0]?.reason).toBe('draining: blue/green deployment nginx, replaced by /nginx-blue');
  });

  it('drains the old colour as the new one becomes healthy, towards HAPROXY_DEPLOYMENT_TARGET_INSTANCES', () => {
    const labels = { ...blue.labels, HAPROXY_DEPLOYMENT_NEW_INSTANCES: '3', HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '3' };
    const at = (tasks: MarathonTask[]) => endpoints([green, { ...blue, labels, instances: tasks.length, tasks }]);
    // Nothing healthy yet on the new colour: the old one serves alone.
    expect(at([])).toEqual(['10.0.6.25:31184', '10.0.6.25:16916', '10.0.6.25:23336']);
    // One: N = min(3 old, 1 healthy, 1 + 3 - 3) = 1.
    expect(at([blueTask(1)])).toEqual(['10.0.6.25:16916', '10.0.6.25:23336', '10.0.1.147:26001']);
    expect(at([blueTask(1), blueTask(2)])).toEqual(['10.0.6.25:23336', '10.0.1.147:26001', '10.0.1.147:26002']);
    expect(at([blueTask(1), blueTask(2), blueTask(3)])).toEqual(['10.0.1.147:26001', '10.0.1.147:26002', '10.0.1.147:26003']);
    // An unhealthy new task is no healthy one.
    const sick = { ...blueTask(2), healthCheckResults: [{ alive: false, firstSuccess: null }] };
    expect(at([blueTask(1), sick])).toEqual(['10.0.6.25:16916', '10.0.6.25:23336', '10.0.1.147:26001']);
  });

  it('keeps the old colour\'s drained tasks drained while a scale-down kills them (instances drop first, tasks once killed)', () => {
    const labels = { ...blue.labels, HAPROXY_DEPLOYMENT_NEW_INSTANCES: '3', HAPROXY_DEPLOYMENT_TARGET_INSTANCES: '3' };
    const newColour = { ...blue, labels, instances: 3, tasks: [blueTask(1), blueTask(2), blueTask(3)] };
    // The old colour scaled to 0, its three tasks still TASK_RUNNING: marathon-lb's count (old instances 0) would undrain all three.
    expect(endpoints([{ ...green, instances: 0 }, newColour])).toEqual(['10.0.1.147:26001', '10.0.1.147:26002', '10.0.1.147:26003']);
    // Scaled to 1 with one healthy new task: N = min(3 old tasks, 1, 1 + 3 listed - 3) = 1, as before the scale-down.
    expect(endpoints([{ ...green, instances: 1 }, { ...newColour, instances: 1, tasks: [blueTask(1)] }])).toEqual(['10.0.6.25:16916', '10.0.6.25:23336', '10.0.1.147:26001']);
  });

  it('is reported as one app for both colours, routed as marathon-lb would', () => {
    const report = migrationReport(snapshot, { group: 'external', marathonLbLabels: true });
    expect(report.summary).toEqual({ apps: 2, unchanged: 2, attention: 0 });
    for (const app of report.apps) expect(app).toMatchObject({ haproxy: 'TCP port 10000; as app nginx', nginx: 'not routed (TCP port 10000: HAProxy nodes only)' });
  });

  it('once zdd deleted the old colour, routes the new one alone; without --marathon-lb-labels, neither', () => {
    expect(endpoints([blue])).toEqual(['10.0.1.147:25724']);
    expect(route(snapshot.apps, false).table.apps).toEqual({});
  });
});
