/**
 * The real Marathon samples (test/fixtures/marathon) the generators start
 * from, plus routed variants of them (edgeroute labels, reachable task
 * addresses, each network mode) so that mutations reach the routing code and
 * not only the parsers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../agent/project-paths.js';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'marathon');

type Json = Record<string, unknown>;

function readJson(...path: string[]): unknown {
  return JSON.parse(readFileSync(join(FIXTURES, ...path), 'utf8')) as unknown;
}

export interface EventSample {
  readonly file: string;
  readonly type: string;
  readonly text: string;
}

let events: EventSample[] | null = null;

/** Every documented event sample, as its text. */
export function eventSamples(): readonly EventSample[] {
  events ??= readdirSync(join(FIXTURES, 'events'))
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(FIXTURES, 'events', file), 'utf8');
      return { file, type: (JSON.parse(text) as { eventType: string }).eventType, text };
    });
  return events;
}

let apps: Json[] | null = null;

/** The documented app samples, each with a distinct id (the fixtures reuse a few). */
export function appSamples(): readonly Json[] {
  if (apps === null) {
    const list = (readJson('apps', 'app_list.json') as { apps: Json[] }).apps;
    const shown = (readJson('apps', '4.2-app-show-embedded-tasks.json') as { app: Json }).app;
    const plain = readJson('apps', 'app.json') as Json;
    const grace = readJson('apps', '4.k-app-task-kill-grace-period.json') as Json;
    apps = [...list, shown, plain, grace].map((app, i) => ({ ...app, id: `${String(app.id)}-${i}` }));
  }
  return apps.map((app) => structuredClone(app));
}

/** The documented task samples (both listings and the embedded ones). */
export function taskSamples(): readonly Json[] {
  const all = (readJson('tasks', 'tasks.json') as { tasks: Json[] }).tasks;
  const ofApp = (readJson('tasks', 'app_tasks.json') as { tasks: Json[] }).tasks;
  const embedded = ((readJson('apps', '4.2-app-show-embedded-tasks.json') as { app: Json }).app.tasks ?? []) as Json[];
  return [...all, ...ofApp, ...embedded].map((task) => structuredClone(task));
}

/** The documented health-check definitions. */
export function healthCheckSamples(): readonly Json[] {
  return readdirSync(join(FIXTURES, 'apps'))
    .filter((file) => file.startsWith('4.h-'))
    .sort()
    .map((file) => readJson('apps', file) as Json);
}

/**
 * An app sample made routable: labels, running tasks on loopback addresses,
 * in host, bridge or container networking. `index` keeps ids, hosts and
 * vhosts apart, so a mutated copy never claims another app's names.
 * `routeLabels`: per-route labels (edgeroute.path, stripPath, ...) it carries too.
 */
export function routedApp(
  index: number,
  mode: 'host' | 'bridge' | 'container',
  base: Json = appSamples()[index % appSamples().length]!,
  routeLabels: Readonly<Record<string, string>> = {},
): Json {
  const id = `/fuzz/routed-${index}`;
  const checks = healthCheckSamples();
  const app: Json = {
    ...base,
    id,
    instances: 2,
    labels: {
      ...(typeof base.labels === 'object' && base.labels !== null ? base.labels : {}),
      'edgeroute.vhosts': `r${index}.fuzz,*.r${index}.fuzz`,
      'edgeroute.weight': '50',
      ...(index % 3 === 0 ? { 'edgeroute.app': `logical-${index}`, 'edgeroute.version': `v${index % 2}` } : {}),
      ...routeLabels,
    },
    healthChecks: index % 2 === 0 ? [checks[index % checks.length]] : [],
  };
  if (mode === 'container') {
    app.networks = [{ mode: 'container', name: 'dcos' }];
    app.container = { type: 'DOCKER', docker: { image: 'nginx' }, portMappings: [{ containerPort: 8080, hostPort: 0, name: 'http' }] };
  } else if (mode === 'bridge') {
    app.networks = [{ mode: 'container/bridge' }];
    app.container = { type: 'DOCKER', docker: { image: 'nginx' }, portMappings: [{ containerPort: 80, hostPort: 0, name: 'http' }] };
  } else {
    app.portDefinitions = [{ port: 0, protocol: 'tcp', name: 'http' }];
  }
  app.tasks = [0, 1].map((n) => ({
    id: `fuzz_routed-${index}.task-${n}`,
    appId: id,
    host: `127.0.${index % 250}.${n + 1}`,
    ports: [31000 + n],
    ipAddresses: [{ ipAddress: `10.${index % 250}.0.${n + 1}`, protocol: 'IPv4' }],
    state: 'TASK_RUNNING',
    stagedAt: '2026-01-01T00:00:00.000Z',
    startedAt: '2026-01-01T00:00:01.000Z',
    version: '2026-01-01T00:00:00.000Z',
    healthCheckResults: index % 2 === 0 ? [{ alive: true, firstSuccess: '2026-01-01T00:00:02.000Z' }] : [],
  }));
  return app;
}
