// Marathon input the samples never show, found by fuzzing (test/fuzz): each
// case here once cost routing for apps that had nothing wrong with them.
import { describe, expect, it } from 'vitest';
import { parseAppsListing } from '../../agent/core/marathon-apps.js';
import { appsToResync, eventTypeLabel, MAX_APPS_PER_EVENT, MAX_COUNTED_EVENT_TYPES, parseEvent, type MarathonEvent } from '../../agent/core/marathon-events.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';
import { MAX_APP_ID_LENGTH } from '../../agent/core/marathon-types.js';
import { appPath } from '../../agent/source/marathon/marathon-client.js';

function event(data: unknown): MarathonEvent {
  const parsed = parseEvent(undefined, JSON.stringify(data));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.event;
}

const plan = (apps: string[]) => ({ eventType: 'deployment_info', plan: { steps: apps.map((app) => ({ actions: [{ action: 'ScaleApplication', app }] })) } });

describe('events naming apps', () => {
  it('re-reads the apps a deployment names, but asks for one full resync past MAX_APPS_PER_EVENT', () => {
    const few = Array.from({ length: MAX_APPS_PER_EVENT }, (_, i) => `/app-${i}`);
    expect(appsToResync(event(plan(few)))).toEqual(few);
    // 10,000 apps in one plan were 10,000 app reads at once.
    expect(appsToResync(event(plan([...few, '/one-more'])))).toBeNull();
  });

  it('names no app for an empty or oversized id (a full resync covers it)', () => {
    for (const appId of ['', `/${'a'.repeat(MAX_APP_ID_LENGTH)}`]) {
      const parsed = event({ eventType: 'status_update_event', appId });
      expect(parsed.appIds).toEqual([]);
      expect(appsToResync(parsed)).toBeNull();
    }
    expect(event(plan(['', '/ok'])).appIds).toEqual(['/ok']);
  });

  // Found by npm run chaos (fuzz agent-e2e): "/" made the agent read /v2/apps/ as one app.
  it.each(['/', '//', '/a/../b', '/./'])('names no app for the pathless id %s', (appId) => {
    expect(event({ eventType: 'status_update_event', appId }).appIds).toEqual([]);
    expect(() => appPath(appId)).toThrow('is not a Marathon app id');
  });

  it('counts event types by name up to a bound, then as "other"', () => {
    const counted = new Set<string>();
    for (let i = 0; i < MAX_COUNTED_EVENT_TYPES; i++) counted.add(eventTypeLabel(`future_event_${i}`, counted));
    expect(eventTypeLabel('one_too_many', counted)).toBe('other');
    expect(eventTypeLabel('status_update_event', counted)).toBe('status_update_event');
    expect(eventTypeLabel('future_event_3', counted)).toBe('future_event_3');
    expect(eventTypeLabel('Not An Event\u0000', new Set())).toBe('other');
  });
});

describe('apps the plugin could not take', () => {
  const task = { id: 't1', host: '10.0.0.1', ports: [31000], ipAddresses: [{ ipAddress: '10.1.0.1', protocol: 'IPv4' }], state: 'TASK_RUNNING', startedAt: '2026-01-01T00:00:00Z' };
  const containerApp = (id: string, containerPort: unknown) => ({
    id,
    labels: { 'edgeroute.vhosts': `${id.slice(1)}.test` },
    networks: [{ mode: 'container' }],
    container: { portMappings: [{ containerPort }] },
    tasks: [{ ...task, appId: id }],
  });

  it.each([70_000, 1.5, -1, 0])('does not route to a container port of %s (nginx refused the whole push)', (port) => {
    const { snapshot } = parseAppsListing(JSON.stringify({ apps: [containerApp('/c', port)] }));
    const table = computeRoutingTable({ snapshot, config: DEFAULT_ROUTING_CONFIG, hostAddresses: new Map(), healthMemory: new Map(), now: Date.now() }).table;
    // The declared port is not one: the task's host port is used, as for a mapping without a container port.
    expect(table.apps['/c']?.versions.stable?.backends).toEqual([{ id: 't1', address: '10.0.0.1', port: 31000, weight: 100 }]);
  });

  it('skips an app whose id is longer than MAX_APP_ID_LENGTH, and keeps the others', () => {
    const long = `/${'x'.repeat(MAX_APP_ID_LENGTH)}`;
    const parsed = parseAppsListing(JSON.stringify({ apps: [{ id: long }, { id: '/ok' }] }));
    expect(parsed.snapshot.apps.map((app) => app.id)).toEqual(['/ok']);
    expect(parsed.problems).toEqual([{ appId: long, message: `app id is longer than ${MAX_APP_ID_LENGTH} characters` }]);
  });

  // Found by npm run chaos (fuzz agent-e2e): JSON can escape a lone surrogate, JSON.stringify
  // writes it back escaped, and the plugin's decoder refused the whole push for it.
  it('skips a task or an app whose id has a lone surrogate, and keeps the others', () => {
    const app = containerApp('/c', 8080);
    const listing = `{"apps": [${JSON.stringify({ ...app, tasks: [...app.tasks, { ...task, id: 'PLACEHOLDER', appId: '/c' }] }).replace('PLACEHOLDER', 't2\\udbd2')}, {"id": "/bad\\ud800"}]}`;
    const parsed = parseAppsListing(listing);
    expect(parsed.snapshot.apps.map((a) => a.id)).toEqual(['/c']);
    expect(parsed.problems.map((p) => p.message)).toEqual([
      'task id "t2\\udbd2" is not well-formed Unicode (it has a lone surrogate)',
      'app id is not well-formed Unicode (it has a lone surrogate)',
    ]);
    const table = computeRoutingTable({ snapshot: parsed.snapshot, config: DEFAULT_ROUTING_CONFIG, hostAddresses: new Map(), healthMemory: new Map(), now: Date.now() }).table;
    expect(table.apps['/c']?.versions.stable?.backends.map((b) => b.id)).toEqual(['t1']);
  });
});
