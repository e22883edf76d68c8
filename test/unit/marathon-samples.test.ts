// Every documented Marathon sample (test/fixtures/marathon) goes through the
// agent's parsers without error.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { parseAppResponse, parseAppsResponse, parseTasksResponse } from '../../agent/core/marathon-apps.js';
import { affectsRouting, parseEvent, type MarathonEvent } from '../../agent/core/marathon-events.js';
import { computeRoutingTable, DEFAULT_ROUTING_CONFIG } from '../../agent/core/routing-table.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'marathon');
const read = (...path: string[]) => readFileSync(join(FIXTURES, ...path), 'utf8');
const json = (...path: string[]) => JSON.parse(read(...path)) as Record<string, unknown>;
const eventFiles = readdirSync(join(FIXTURES, 'events')).filter((f) => f.endsWith('.json'));

function parseStream(text: string): MarathonEvent[] {
  const events: MarathonEvent[] = [];
  const parser = createParser({
    onEvent: ({ event, data }) => {
      const parsed = parseEvent(event, data);
      if (!parsed.ok) throw new Error(parsed.message);
      events.push(parsed.event);
    },
  });
  parser.feed(text);
  return events;
}

describe('Marathon event samples', () => {
  it('has a sample for each documented event type', () => {
    expect(eventFiles.length).toBeGreaterThanOrEqual(30);
  });

  it.each(eventFiles)('parses %s', (file) => {
    const text = read('events', file);
    const parsed = parseEvent(undefined, text);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.event.type).toBe((JSON.parse(text) as { eventType: string }).eventType);
  });

  it.each([
    ['1.7-status_update_event.json', '/my-app', 'TASK_RUNNING'],
    ['1.9-instance_changed_event.json', '/app-id', null],
    ['1.3-api_post_event.json', '/my-app', null],
    ['1.27-deployment_info.json', '/my-app', null],
    ['1.8-app_terminated_event.json', '/my-app', null],
  ])('reads the app named by %s', (file, appId, status) => {
    const parsed = parseEvent(undefined, read('events', file));
    expect(parsed.ok && parsed.event.appId).toBe(appId);
    expect(parsed.ok && parsed.event.taskStatus).toBe(status);
    expect(parsed.ok && affectsRouting(parsed.event)).toBe(true);
  });

  it('ignores events that cannot change routing', () => {
    for (const file of ['1.12-framework_message_event.json', '1.13-subscribe_event.json', '1.4-pod_created_event.json']) {
      const parsed = parseEvent(undefined, read('events', file));
      expect(parsed.ok && affectsRouting(parsed.event)).toBe(false);
    }
    // A client attached to the bus: this agent's own attach is a full read already (onConnected), another's changes nothing.
    const attached = parseEvent('event_stream_attached', '{"remoteAddress":"10.0.0.9","eventType":"event_stream_attached","timestamp":"2026-11-29T21:00:00.000Z"}');
    expect(attached.ok && affectsRouting(attached.event)).toBe(false);
  });

  it('refuses malformed event data with a message', () => {
    expect(parseEvent('status_update_event', '{"eventType": ')).toMatchObject({ ok: false });
    expect(parseEvent('x', '[1,2]')).toEqual({ ok: false, message: 'event data is not a JSON object' });
    expect(parseEvent('message', '{}')).toEqual({ ok: false, message: 'event has no eventType' });
  });

  it('reads the SSE wire sample with CRLF framing and a heartbeat', () => {
    const events = parseStream(read('sse', 'events.txt'));
    expect(events.map((e) => e.type)).toEqual(['event_stream_attached', 'status_update_event', 'status_update_event']);
    expect(events[2]).toMatchObject({ appId: '/test-app', taskStatus: 'TASK_RUNNING' });
  });

  it('reads the legacy data-only stream', () => {
    expect(parseStream(read('sse', 'legacy-data-only.txt')).map((e) => e.type)).toEqual(['event_stream_attached', 'group_change_success']);
  });
});

describe('Marathon app and task samples', () => {
  it('parses GET /v2/apps', () => {
    const { snapshot, problems } = parseAppsResponse(json('apps', 'app_list.json'));
    expect(problems).toEqual([]);
    expect(snapshot.apps[0]).toMatchObject({ id: '/myapp', networkMode: 'host', ports: [{ hostPort: 10013 }, { hostPort: 10015 }] });
  });

  it('parses GET /v2/apps/{id} with embedded tasks, health results and no task state', () => {
    const { snapshot, problems } = parseAppResponse(json('apps', '4.2-app-show-embedded-tasks.json'));
    expect(problems).toEqual([]);
    const app = snapshot.apps[0];
    expect(app?.healthCheckCount).toBe(2);
    expect(app?.tasks).toHaveLength(2);
    expect(app?.tasks[0]).toMatchObject({ state: 'TASK_RUNNING', host: '10.141.141.10', ports: [31045] });
    expect(app?.tasks[0]?.healthCheckResults[0]).toMatchObject({ alive: true, firstSuccess: '2014-09-13T00:20:28.101Z' });

    const labelled = { ...app!, labels: { 'edgeroute.vhosts': 'toggle.example.com' } };
    const { table } = computeRoutingTable({
      snapshot: { apps: [labelled] },
      config: DEFAULT_ROUTING_CONFIG,
      hostAddresses: new Map(),
      healthMemory: new Map(),
      now: Date.parse('2014-09-13T01:00:00.000Z'),
    });
    // Backends are ordered by task id.
    expect(table.apps['/toggle']?.versions.stable?.backends.map((b) => `${b.address}:${b.port}`)).toEqual(['10.141.141.10:31234', '10.141.141.10:31045']);
  });

  it.each(readdirSync(join(FIXTURES, 'apps')).filter((f) => f.startsWith('app.') || f.startsWith('4.k')))('parses the app definition %s', (file) => {
    const { snapshot, problems } = parseAppResponse({ app: json('apps', file) });
    expect(problems).toEqual([]);
    expect(snapshot.apps).toHaveLength(1);
  });

  it('reads the container-network ports of app.json', () => {
    const app = parseAppResponse({ app: json('apps', 'app.json') }).snapshot.apps[0];
    expect(app).toMatchObject({ id: '/foo', networkMode: 'container', taskKillGracePeriodSeconds: 30, labels: { owner: 'zeus' } });
    expect(app?.ports[0]?.containerPort).toBe(80);
  });

  it.each(readdirSync(join(FIXTURES, 'apps')).filter((f) => f.startsWith('4.h')))('accepts the health check %s on an app', (file) => {
    const { snapshot, problems } = parseAppResponse({ app: { id: '/hc', healthChecks: [json('apps', file)] } });
    expect(problems).toEqual([]);
    expect(snapshot.apps[0]?.healthCheckCount).toBe(1);
  });

  it.each(readdirSync(join(FIXTURES, 'tasks')))('parses the task listing %s', (file) => {
    const { tasks, problems } = parseTasksResponse(json('tasks', file));
    expect(problems).toEqual([]);
    expect(tasks.length).toBeGreaterThan(0);
  });

  it('reports malformed apps and tasks, and keeps the good ones', () => {
    const { snapshot, problems } = parseAppsResponse({
      apps: [
        'nonsense',
        { cmd: 'no id' },
        { id: '/ok', tasks: [{ id: 'ok.1', ports: ['x'] }, { id: 'ok.2', ports: [31000], startedAt: '2026-01-01T00:00:00Z', host: '10.0.0.1' }] },
      ],
    });
    expect(snapshot.apps.map((a) => a.id)).toEqual(['/ok']);
    expect(snapshot.apps[0]?.tasks.map((t) => t.id)).toEqual(['ok.2']);
    expect(problems.map((p) => p.message)).toEqual(['app is not an object', 'app has no id', 'task ok.1 has a malformed "ports" list']);
    expect(problems[2]?.appId).toBe('/ok');
  });

  it('reports a listing without an apps array', () => {
    expect(parseAppsResponse({ message: 'oops' }).problems).toEqual([{ appId: null, message: 'apps listing has no "apps" array' }]);
  });
});
