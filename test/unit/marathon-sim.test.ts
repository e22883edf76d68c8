import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { MarathonSim } from '../sim/marathon-sim.js';

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection, so no pooled socket outlives a closed server. */
function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function getJson(url: string): Promise<{ status: number; json: any; headers: IncomingHttpHeaders }> {
  const reply = await httpRequest(url);
  return { status: reply.status, headers: reply.headers, json: JSON.parse(reply.body) };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

type Frame = { kind: 'heartbeat' } | { kind: 'event'; name: string; data: any };

/**
 * A raw `/v2/events` reader that accepts only Jetty's framing: `event: X\r\ndata: {json}\r\n\r\n`
 * or a bare `\r\n` heartbeat. Anything else fails the test.
 */
class RawEventStream {
  raw = '';
  frames: Frame[] = [];
  closed = false;
  response!: IncomingMessage;
  private pending = '';

  static open(baseUrl: string, query = ''): Promise<RawEventStream> {
    const stream = new RawEventStream();
    return new Promise((resolve, reject) => {
      const req = request(`${baseUrl}/v2/events${query}`, { headers: { Accept: 'text/event-stream' }, agent: false }, (res) => {
        stream.response = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => stream.take(chunk));
        res.on('close', () => (stream.closed = true));
        res.on('error', () => (stream.closed = true));
        resolve(stream);
      });
      req.on('error', reject);
      req.end();
    });
  }

  events(name?: string): Array<{ name: string; data: any }> {
    return this.frames.flatMap((frame) => (frame.kind === 'event' && (name === undefined || frame.name === name) ? [frame] : []));
  }

  close(): void {
    this.response.destroy();
  }

  private take(chunk: string): void {
    this.raw += chunk;
    this.pending += chunk;
    for (;;) {
      if (this.pending.startsWith('\r\n')) {
        this.frames.push({ kind: 'heartbeat' });
        this.pending = this.pending.slice(2);
        continue;
      }
      const match = /^event: ([^\r\n]+)\r\ndata: ([^\r\n]*)\r\n\r\n/.exec(this.pending);
      if (!match) break;
      const data = JSON.parse(match[2]!);
      expect(data.eventType).toBe(match[1]);
      this.frames.push({ kind: 'event', name: match[1]!, data });
      this.pending = this.pending.slice(match[0].length);
    }
    const couldStillBeAFrame = 'event: '.startsWith(this.pending.slice(0, 7)) || this.pending.startsWith('\r');
    if (this.pending !== '' && !couldStillBeAFrame) throw new Error(`unexpected bytes on the stream: ${JSON.stringify(this.pending)}`);
  }
}

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const fixture = (path: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/marathon/${path}`, import.meta.url), 'utf8'));

const sims: MarathonSim[] = [];
const streams: RawEventStream[] = [];

async function startSim(opts?: { heartbeatMs?: number }): Promise<MarathonSim> {
  const sim = await MarathonSim.start(opts);
  sims.push(sim);
  return sim;
}

async function openStream(sim: MarathonSim, query = ''): Promise<RawEventStream> {
  const stream = await RawEventStream.open(sim.url, query);
  streams.push(stream);
  return stream;
}

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(sims.splice(0).map((sim) => sim.stop()));
});

const HTTP_CHECK = { protocol: 'HTTP', path: '/health', portIndex: 0 };

describe('MarathonSim REST listings', () => {
  it('serves /v2/apps, /v2/apps/{id}, /v2/tasks in Marathon shapes', async () => {
    const sim = await startSim();
    const deployed = await sim.deploy({ id: 'web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test' }, healthChecks: [HTTP_CHECK] });
    expect(deployed).toHaveLength(2);
    expect(deployed.every((task) => task.state === 'TASK_RUNNING' && task.healthy === true)).toBe(true);

    const { status, headers, json } = await getJson(`${sim.url}/v2/apps?embed=apps.tasks&embed=apps.counts`);
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('application/json; charset=utf-8');
    const app = json.apps[0];
    expect(app).toMatchObject({
      id: '/web',
      instances: 2,
      labels: { 'edgeroute.vhosts': 'web.test' },
      portDefinitions: [{ port: 10000, protocol: 'tcp', name: 'http', labels: {} }],
      ports: [10000],
      requirePorts: false,
      container: null,
      tasksRunning: 2,
      tasksHealthy: 2,
      tasksUnhealthy: 0,
      tasksStaged: 0,
      deployments: [],
    });
    expect(app.healthChecks[0]).toMatchObject(HTTP_CHECK);
    expect(app.version).toMatch(ISO_MS);
    expect(app.versionInfo.lastConfigChangeAt).toMatch(ISO_MS);

    const task = app.tasks[0];
    const fixtureTaskKeys = Object.keys(fixture('tasks/tasks.json').tasks[0]).filter((key) => key !== 'region' && key !== 'zone');
    expect(Object.keys(task)).toEqual(expect.arrayContaining(fixtureTaskKeys));
    expect(task).toMatchObject({ appId: '/web', host: '127.0.0.1', state: 'TASK_RUNNING', servicePorts: [10000] });
    expect(task.id).toMatch(/^web\.[0-9a-f-]{36}$/);
    expect(task.ports).toEqual([expect.any(Number)]);
    expect(task.startedAt).toMatch(ISO_MS);
    expect(task.healthCheckResults).toEqual([
      {
        alive: true,
        consecutiveFailures: 0,
        firstSuccess: expect.stringMatching(ISO_MS),
        lastFailure: null,
        lastSuccess: expect.stringMatching(ISO_MS),
        lastFailureCause: null,
        instanceId: task.id.replace(/^web\./, 'web.marathon-'),
        taskId: task.id,
      },
    ]);

    expect((await getJson(`${sim.url}/v2/apps`)).json.apps[0].tasks).toBeUndefined();
    expect((await getJson(`${sim.url}/v2/apps/web`)).json.app.tasks).toHaveLength(2);
    expect(await getJson(`${sim.url}/v2/apps/nope`)).toMatchObject({ status: 404, json: { message: "App '/nope' does not exist" } });
    expect((await getJson(`${sim.url}/v2/tasks`)).json.tasks).toHaveLength(2);
    expect((await getJson(`${sim.url}/v2/apps/web/tasks`)).json.tasks.map((t: any) => t.id).sort()).toEqual(
      deployed.map((t) => t.id).sort(),
    );
    expect((await getJson(`${sim.url}/v2/leader`)).json).toEqual({ leader: sim.url.replace('http://', '') });
    expect((await getJson(`${sim.url}/v2/info`)).json).toMatchObject({ name: 'marathon', version: '1.10.17', elected: true });
    expect(await httpRequest(`${sim.url}/ping`)).toMatchObject({ status: 200, body: 'pong' });
    expect((await getJson(`${sim.url}/v2/nothing`)).status).toBe(404);
  });

  it('answers a raw body when told to, and scales through PUT', async () => {
    const sim = await startSim();
    await sim.deploy({ id: '/api', instances: 1 });
    sim.setRawAppsResponse('{"apps": [');
    expect((await httpRequest(`${sim.url}/v2/apps`)).body).toBe('{"apps": [');
    sim.setRawAppsResponse(null);

    const put = await httpRequest(`${sim.url}/v2/apps/api`, { method: 'PUT', body: JSON.stringify({ instances: 3 }) });
    expect(put.status).toBe(200);
    expect(JSON.parse(put.body)).toEqual({ version: expect.stringMatching(ISO_MS), deploymentId: expect.any(String) });
    await waitFor(() => sim.tasks('/api').filter((task) => task.state === 'TASK_RUNNING').length === 3, 'three running tasks');
  });
});

describe('MarathonSim event stream', () => {
  it('frames events the Jetty way, with heartbeats and the deploy sequence', async () => {
    const sim = await startSim({ heartbeatMs: 200 });
    const stream = await openStream(sim);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toBe('text/event-stream;charset=UTF-8');
    expect(stream.response.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
    expect(stream.response.headers.connection).toBe('close');

    await waitFor(() => stream.frames.some((frame) => frame.kind === 'heartbeat'), 'a heartbeat', 1000);
    expect(stream.raw).toMatch(/^event: event_stream_attached\r\ndata: \{[^\r\n]*"remoteAddress":"127\.0\.0\.1"[^\r\n]*\}\r\n\r\n/);
    expect(stream.raw).toContain('\r\n\r\n\r\n');

    const [task] = await sim.deploy({ id: '/web', instances: 1, healthChecks: [HTTP_CHECK] });
    await waitFor(() => stream.events('deployment_success').length === 1, 'deployment_success');
    expect(stream.events().map((event) => event.name).slice(1)).toEqual([
      'api_post_event',
      'deployment_info',
      'status_update_event',
      'instance_changed_event',
      'status_update_event',
      'instance_changed_event',
      'health_status_changed_event',
      'instance_health_changed_event',
      'deployment_step_success',
      'deployment_success',
    ]);
    const running = stream.events('status_update_event').find((event) => event.data.taskStatus === 'TASK_RUNNING');
    expect(running?.data).toMatchObject({
      taskId: task!.id,
      appId: '/web',
      host: '127.0.0.1',
      ports: [task!.port],
      message: '',
      ipAddresses: [{ ipAddress: '127.0.0.1', protocol: 'IPv4' }],
      slaveId: expect.any(String),
      version: expect.stringMatching(ISO_MS),
      timestamp: expect.stringMatching(ISO_MS),
    });
    expect(stream.events('deployment_info')[0]?.data.plan.steps).toEqual([{ actions: [{ action: 'ScaleApplication', app: '/web' }] }]);
    expect(sim.eventCount()).toBeGreaterThanOrEqual(11);
  });

  it('filters by event_type and refuses clients that do not accept text/event-stream', async () => {
    const sim = await startSim();
    const stream = await openStream(sim, '?event_type=status_update_event&event_type=app_terminated_event');
    await sim.deploy({ id: '/web', instances: 1 });
    await sim.removeApp('/web');
    await waitFor(() => stream.events('app_terminated_event').length === 1, 'app_terminated_event');
    expect(new Set(stream.events().map((event) => event.name))).toEqual(new Set(['status_update_event', 'app_terminated_event']));
    expect(stream.events('status_update_event').map((event) => event.data.taskStatus)).toEqual(['TASK_STAGING', 'TASK_RUNNING', 'TASK_KILLED']);

    const refused = await httpRequest(`${sim.url}/v2/events`, { headers: { Accept: 'application/json' } });
    expect(refused.status).toBe(405);
    expect(refused.body).toContain('HTTP ERROR: 405');
  });

  it('emits health events and drops results on setHealth(null)', async () => {
    const sim = await startSim();
    const [task] = await sim.deploy({ id: '/web', instances: 1, healthChecks: [HTTP_CHECK] });
    const stream = await openStream(sim);
    sim.setHealth(task!.id, false);
    await waitFor(() => stream.events('instance_health_changed_event').length === 1, 'instance_health_changed_event');
    expect(stream.events().map((event) => event.name).slice(1)).toEqual([
      'failed_health_check_event',
      'health_status_changed_event',
      'instance_health_changed_event',
    ]);
    expect(stream.events('health_status_changed_event')[0]?.data).toMatchObject({ alive: false, appId: '/web' });
    expect(sim.tasks('/web')[0]?.healthy).toBe(false);

    sim.setHealth(task!.id, null);
    const { json } = await getJson(`${sim.url}/v2/apps/web/tasks`);
    expect(json.tasks[0].healthCheckResults).toEqual([]);
    expect(sim.tasks('/web')[0]?.healthy).toBeNull();
  });
});

describe('MarathonSim tasks and lifecycle', () => {
  it('runs a real HTTP server per task that answers with its id', async () => {
    const sim = await startSim();
    const tasks = await sim.deploy({ id: '/shop/api', instances: 2 });
    for (const task of tasks) {
      expect(task.id).toMatch(/^shop_api\./);
      const reply = await httpRequest(`http://${task.host}:${task.port}/any/path?x=1`, { method: 'POST', body: 'ignored' });
      expect(reply).toMatchObject({ status: 200, body: task.id });
      expect(reply.headers['x-task-id']).toBe(task.id);
    }
  });

  it('kills through TASK_KILLING, answering during the grace period, then TASK_KILLED', async () => {
    const sim = await startSim();
    const [task] = await sim.deploy({ id: '/slow', instances: 1, taskKillGracePeriodSeconds: 1 });
    const stream = await openStream(sim, '?event_type=status_update_event&event_type=instance_changed_event');
    const killed = sim.killTask(task!.id);

    await waitFor(() => stream.events('status_update_event').length === 1, 'TASK_KILLING');
    expect(stream.events('status_update_event')[0]?.data.taskStatus).toBe('TASK_KILLING');
    expect(sim.tasks('/slow')).toMatchObject([{ id: task!.id, state: 'TASK_KILLING' }]);
    expect((await getJson(`${sim.url}/v2/tasks`)).json.tasks[0].state).toBe('TASK_KILLING');
    expect((await httpRequest(`http://127.0.0.1:${task!.port}/`)).body).toBe(task!.id);

    await killed;
    await waitFor(() => stream.events('instance_changed_event').length === 2, 'TASK_KILLED on the stream');
    expect(stream.events('status_update_event').map((event) => event.data.taskStatus)).toEqual(['TASK_KILLING', 'TASK_KILLED']);
    expect(stream.events('instance_changed_event').map((event) => event.data.condition)).toEqual(['Killing', 'Killed']);
    expect(sim.tasks('/slow')).toEqual([]);
    await expect(httpRequest(`http://127.0.0.1:${task!.port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('goes unavailable and comes back on the same port', async () => {
    const sim = await startSim();
    const stream = await openStream(sim);
    await sim.setUnavailable(true);
    await waitFor(() => stream.closed, 'the stream to close');
    await expect(httpRequest(`${sim.url}/ping`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await sim.setUnavailable(false);
    expect(await httpRequest(`${sim.url}/ping`)).toMatchObject({ status: 200, body: 'pong' });
  });

  it('stops every server, and stop() is idempotent', async () => {
    const sim = await startSim();
    const tasks = await sim.deploy({ id: '/web', instances: 2, taskKillGracePeriodSeconds: 30 });
    const stream = await openStream(sim);
    void sim.killTask(tasks[0]!.id);
    await sim.stop();
    await sim.stop();
    await waitFor(() => stream.closed, 'the stream to close');
    const urls = [`${sim.url}/ping`, ...tasks.map((task) => `http://127.0.0.1:${task.port}/`)];
    for (const url of urls) await expect(httpRequest(url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
