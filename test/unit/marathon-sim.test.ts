import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MarathonSim, type MarathonEvent, type SimAppSpec } from '../sim/marathon-sim.js';

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One request on a fresh connection, so no pooled socket outlives a closed server.
 * `https:` URLs trust `ca` (a PEM certificate). Redirects are not followed.
 */
function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    };
    const method = opts.method ?? 'GET';
    const req = url.startsWith('https:')
      ? httpsRequest(url, { method, headers: opts.headers, agent: false, ca: opts.ca }, onResponse)
      : request(url, { method, headers: opts.headers, agent: false }, onResponse);
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

async function startSim(opts?: Parameters<typeof MarathonSim.start>[0]): Promise<MarathonSim> {
  const sim = await MarathonSim.start(opts);
  sims.push(sim);
  return sim;
}

async function openStream(sim: MarathonSim, query = '', baseUrl = sim.url): Promise<RawEventStream> {
  const stream = await RawEventStream.open(baseUrl, query);
  streams.push(stream);
  return stream;
}

const backends: Server[] = [];

/** A backend of our own for virtual tasks: answers `backend-<name>`. Closed after each test. */
async function startBackend(name: string): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    res.end(`backend-${name}`);
  });
  backends.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(sims.splice(0).map((sim) => sim.stop()));
  await Promise.all(
    backends.splice(0).map((server) => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    })),
  );
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
    // Marathon leaves the key out when a task has no results.
    expect(json.tasks[0]).not.toHaveProperty('healthCheckResults');
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

const hostPort = (url: string): string => url.replace(/^https?:\/\//, '');

describe('MarathonSim HA cluster', () => {
  it('names the leader on every instance, and only the leader is elected', async () => {
    const sim = await startSim({ instances: 3 });
    expect(sim.urls).toHaveLength(3);
    expect(new Set(sim.urls).size).toBe(3);
    expect(sim.url).toBe(sim.urls[0]);
    expect(sim.leaderIndex()).toBe(0);
    for (const [index, url] of sim.urls.entries()) {
      expect(await getJson(`${url}/v2/leader`)).toMatchObject({ status: 200, json: { leader: hostPort(sim.urls[0]!) } });
      expect(await httpRequest(`${url}/ping`)).toMatchObject({ status: 200, body: 'pong' });
      const info = (await getJson(`${url}/v2/info`)).json;
      expect(info).toMatchObject({ elected: index === 0, leader: hostPort(sim.urls[0]!) });
      expect(info.http_config.http_port).toBe(Number(new URL(url).port));
    }
  });

  it('redirects /v2/events on a standby to the leader, keeping the query', async () => {
    const sim = await startSim({ instances: 3 });
    const reply = await httpRequest(`${sim.urls[2]}/v2/events?event_type=status_update_event&plan-format=light`, {
      headers: { Accept: 'text/event-stream' },
    });
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe(`${sim.urls[0]}/v2/events?event_type=status_update_event&plan-format=light`);
    expect(sim.eventStreamCount()).toBe(0);
    const stream = await openStream(sim, '', reply.headers.location!.replace(/\/v2\/events.*$/, ''));
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['x-marathon-leader']).toBe(sim.urls[0]);
    await waitFor(() => sim.eventStreamCount() === 1, 'the stream on the leader');
  });

  it('proxies REST requests on a standby to the leader, bodies included', async () => {
    const sim = await startSim({ instances: 3 });
    await sim.deploy({ id: '/web', instances: 2, healthChecks: [HTTP_CHECK] });
    const direct = await getJson(`${sim.urls[0]}/v2/apps?embed=apps.tasks`);
    const proxied = await getJson(`${sim.urls[1]}/v2/apps?embed=apps.tasks`);
    expect(proxied.status).toBe(200);
    expect(proxied.json).toEqual(direct.json);
    expect(proxied.headers['x-marathon-via']).toBe(`1.1 ${hostPort(sim.urls[1]!)}`);
    expect(proxied.headers['x-marathon-leader']).toBe(sim.urls[0]);
    expect(proxied.headers['content-type']).toBe('application/json; charset=utf-8');

    const put = await httpRequest(`${sim.urls[2]}/v2/apps/api`, { method: 'PUT', body: JSON.stringify({ instances: 1 }) });
    expect(put.status).toBe(201);
    expect(put.headers['marathon-deployment-id']).toEqual(expect.any(String));
    await waitFor(() => sim.taskCount('/api', 'TASK_RUNNING') === 1, 'the app created through a standby');
    expect((await getJson(`${sim.urls[2]}/v2/apps/nope`)).status).toBe(404);
  });

  it('electLeader cuts every stream and drops health results; restoreHealth brings them back', async () => {
    const sim = await startSim({ instances: 3 });
    const [first, second] = await sim.deploy({ id: '/web', instances: 2, healthChecks: [HTTP_CHECK] });
    const before = (await getJson(`${sim.url}/v2/tasks`)).json.tasks as any[];
    const stream = await openStream(sim);
    await waitFor(() => sim.eventStreamCount() === 1, 'the stream');

    await sim.electLeader(1);
    expect(sim.leaderIndex()).toBe(1);
    await waitFor(() => stream.closed, 'the stream to be cut');
    expect(sim.eventStreamCount()).toBe(0);
    expect((await getJson(`${sim.urls[0]}/v2/leader`)).json).toEqual({ leader: hostPort(sim.urls[1]!) });
    expect((await getJson(`${sim.urls[0]}/v2/info`)).json.elected).toBe(false);
    expect((await getJson(`${sim.urls[1]}/v2/info`)).json.elected).toBe(true);
    const redirect = await httpRequest(`${sim.urls[0]}/v2/events`, { headers: { Accept: 'text/event-stream' } });
    expect(redirect).toMatchObject({ status: 302, headers: { location: `${sim.urls[1]}/v2/events` } });

    const { json } = await getJson(`${sim.urls[2]}/v2/apps/web`);
    expect(json.app).toMatchObject({ tasksRunning: 2, tasksHealthy: 0, tasksUnhealthy: 0 });
    for (const task of json.app.tasks) expect(task).not.toHaveProperty('healthCheckResults');
    expect(sim.tasks('/web').map((task) => task.healthy)).toEqual([null, null]);

    const newStream = await openStream(sim, '?event_type=health_status_changed_event', sim.urls[1]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    sim.setHealth(first!.id, true);
    sim.restoreHealth();
    await waitFor(() => newStream.events().length === 2, 'two health_status_changed_event');
    const after = (await getJson(`${sim.urls[1]}/v2/tasks`)).json.tasks as any[];
    for (const task of [first!, second!]) {
      const old = before.find((entry) => entry.id === task.id).healthCheckResults[0];
      const fresh = after.find((entry) => entry.id === task.id).healthCheckResults[0];
      expect(fresh).toMatchObject({ alive: true, consecutiveFailures: 0, taskId: task.id });
      expect(Date.parse(fresh.firstSuccess)).toBeGreaterThan(Date.parse(old.firstSuccess));
    }
    expect(sim.tasks('/web').map((task) => task.healthy)).toEqual([true, true]);
  });

  it('setInstanceDown refuses on that port only; a downed leader leaves no leader', async () => {
    const sim = await startSim({ instances: 3 });
    await sim.setInstanceDown(2, true);
    await expect(httpRequest(`${sim.urls[2]}/ping`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    for (const url of sim.urls.slice(0, 2)) expect((await httpRequest(`${url}/ping`)).status).toBe(200);
    await sim.setInstanceDown(2, false);
    expect((await httpRequest(`${sim.urls[2]}/ping`)).body).toBe('pong');

    const stream = await openStream(sim);
    await sim.setInstanceDown(0, true);
    await waitFor(() => stream.closed, 'the leader stream to be cut');
    expect(await getJson(`${sim.urls[1]}/v2/leader`)).toMatchObject({ status: 404, json: { message: 'There is no leader' } });
    expect(await getJson(`${sim.urls[1]}/v2/apps`)).toMatchObject({ status: 503, json: { message: 'Could not determine the current leader' } });
    expect((await httpRequest(`${sim.urls[2]}/v2/events`, { headers: { Accept: 'text/event-stream' } })).status).toBe(503);
    expect((await getJson(`${sim.urls[1]}/v2/info`)).json).toMatchObject({ elected: false, leader: null });

    await sim.electLeader(1);
    expect((await getJson(`${sim.urls[1]}/v2/apps`)).status).toBe(200);
    expect((await getJson(`${sim.urls[2]}/v2/apps`)).headers['x-marathon-via']).toBe(`1.1 ${hostPort(sim.urls[2]!)}`);
    await sim.forceFailover();
    expect(sim.leaderIndex()).toBe(2);

    await sim.setUnavailable(true);
    for (const url of sim.urls) await expect(httpRequest(`${url}/ping`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await sim.setUnavailable(false);
    for (const url of sim.urls) expect((await httpRequest(`${url}/ping`)).status).toBe(200);
  });

  it('serves HTTPS with the given certificate, standbys included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgeroute-sim-tls-'));
    try {
      const keyPath = join(dir, 'key.pem');
      const certPath = join(dir, 'cert.pem');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath],
        { stdio: 'ignore' },
      );
      const cert = readFileSync(certPath, 'utf8');
      const sim = await startSim({ instances: 2, tls: { key: readFileSync(keyPath, 'utf8'), cert } });
      expect(sim.urls.every((url) => url.startsWith('https://127.0.0.1:'))).toBe(true);
      expect(await httpRequest(`${sim.url}/ping`, { ca: cert })).toMatchObject({ status: 200, body: 'pong' });
      await sim.deploy({ id: '/web', instances: 1 });
      const proxied = await httpRequest(`${sim.urls[1]}/v2/apps`, { ca: cert });
      expect(proxied.status).toBe(200);
      expect(JSON.parse(proxied.body).apps[0].id).toBe('/web');
      expect((await httpRequest(`${sim.urls[1]}/v2/events`, { ca: cert })).headers.location).toBe(`${sim.url}/v2/events`);
      await expect(httpRequest(`${sim.url}/ping`)).rejects.toThrow(); // untrusted without the CA
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('MarathonSim health timing', () => {
  it('lists no healthCheckResults until firstHealthyAfterMs after TASK_RUNNING', async () => {
    const sim = await startSim();
    const stream = await openStream(sim, '?event_type=health_status_changed_event&event_type=instance_health_changed_event');
    const [task] = await sim.deploy({ id: '/slow', instances: 1, healthChecks: [HTTP_CHECK], firstHealthyAfterMs: 300 });
    const early = (await getJson(`${sim.url}/v2/apps/slow`)).json.app;
    expect(early.tasks[0]).not.toHaveProperty('healthCheckResults');
    expect(early).toMatchObject({ tasksRunning: 1, tasksHealthy: 0 });
    expect(sim.tasks('/slow')[0]?.healthy).toBeNull();

    await waitFor(() => sim.tasks('/slow')[0]?.healthy === true, 'the first health result', 2000);
    const listed = (await getJson(`${sim.url}/v2/apps/slow/tasks`)).json.tasks[0];
    expect(listed.healthCheckResults).toEqual([expect.objectContaining({ alive: true, consecutiveFailures: 0, lastFailure: null })]);
    expect(Date.parse(listed.healthCheckResults[0].firstSuccess) - Date.parse(listed.startedAt)).toBeGreaterThanOrEqual(290);
    await waitFor(() => stream.events().length === 2, 'the health events');
    expect(stream.events().map((event) => [event.name, event.data.alive ?? event.data.healthy])).toEqual([
      ['health_status_changed_event', true],
      ['instance_health_changed_event', true],
    ]);

    const old = '2020-01-02T03:04:05.678Z';
    sim.setStartedAt(task!.id, old);
    expect((await getJson(`${sim.url}/v2/tasks`)).json.tasks[0]).toMatchObject({ startedAt: old, stagedAt: old });
    expect(sim.tasks('/slow')[0]?.startedAt).toBe(old);
  });

  it('reports a failure first when startHealthy is false', async () => {
    const sim = await startSim();
    await sim.deploy({ id: '/sick', instances: 1, healthChecks: [HTTP_CHECK], firstHealthyAfterMs: 50, startHealthy: false });
    expect(sim.tasks('/sick')[0]?.healthy).toBeNull();
    await waitFor(() => sim.tasks('/sick')[0]?.healthy === false, 'the failed first check');
    const result = (await getJson(`${sim.url}/v2/tasks`)).json.tasks[0].healthCheckResults[0];
    expect(result).toMatchObject({ alive: false, consecutiveFailures: 1, firstSuccess: null, lastFailureCause: expect.any(String) });
    expect(result.lastFailure).toMatch(ISO_MS);
  });
});

describe('MarathonSim rolling restart', () => {
  it('keeps every instance running and healthy, does not wait for grace periods, and replaces all tasks', async () => {
    const sim = await startSim();
    const spec = { id: '/web', instances: 4, healthChecks: [HTTP_CHECK], firstHealthyAfterMs: 40, taskKillGracePeriodSeconds: 1 };
    await sim.deploy(spec);
    await waitFor(() => sim.tasks('/web').every((task) => task.healthy === true), 'healthy tasks');
    const oldTasks = sim.tasks('/web');
    const stream = await openStream(sim);

    let minRunning = Infinity;
    let minServing = Infinity;
    let maxKilling = 0;
    const sample = (): void => {
      const tasks = sim.tasks('/web');
      const running = tasks.filter((task) => task.state === 'TASK_RUNNING');
      minRunning = Math.min(minRunning, running.length);
      minServing = Math.min(minServing, running.filter((task) => task.healthy === true).length);
      maxKilling = Math.max(maxKilling, tasks.filter((task) => task.state === 'TASK_KILLING').length);
    };
    const poller = setInterval(sample, 10);
    const startedAt = Date.now();
    try {
      await sim.restartApp('/web');
    } finally {
      clearInterval(poller);
    }
    sample();
    const elapsed = Date.now() - startedAt;

    expect(minRunning).toBeGreaterThanOrEqual(4);
    expect(minServing).toBeGreaterThanOrEqual(4);
    expect(maxKilling).toBeGreaterThanOrEqual(2); // kills overlap: no step waited for a grace period
    expect(elapsed).toBeLessThan(2500); // one grace period plus the steps, not four grace periods
    const now = sim.tasks('/web');
    expect(now).toHaveLength(4);
    expect(now.every((task) => task.state === 'TASK_RUNNING' && task.healthy === true)).toBe(true);
    const oldIds = new Set(oldTasks.map((task) => task.id));
    expect(now.some((task) => oldIds.has(task.id))).toBe(false);
    for (const task of oldTasks) await expect(httpRequest(`http://127.0.0.1:${task.port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await waitFor(() => stream.events('deployment_success').length === 1, 'deployment_success');
    const names = stream.events().map((event) => event.name);
    expect(stream.events('deployment_info')[0]?.data.plan.steps).toEqual([{ actions: [{ action: 'RestartApplication', app: '/web' }] }]);
    expect(names.slice(-2)).toEqual(['deployment_step_success', 'deployment_success']);
    const killed = stream.events('status_update_event').filter((event) => event.data.taskStatus === 'TASK_KILLED');
    expect(new Set(killed.map((event) => event.data.taskId))).toEqual(oldIds);
    const lastKilledAt = names.lastIndexOf('status_update_event');
    expect(lastKilledAt).toBeLessThan(names.indexOf('deployment_step_success'));
  });

  it('replaces `batch` tasks per step', async () => {
    const sim = await startSim();
    const oldTasks = await sim.deploy({ id: '/web', instances: 4 });
    let maxListed = 0;
    let minRunning = Infinity;
    const poller = setInterval(() => {
      maxListed = Math.max(maxListed, sim.taskCount('/web'));
      minRunning = Math.min(minRunning, sim.taskCount('/web', 'TASK_RUNNING'));
    }, 1);
    try {
      await sim.restartApp('/web', { batch: 2 });
    } finally {
      clearInterval(poller);
    }
    expect(maxListed).toBeLessThanOrEqual(6);
    expect(minRunning).toBeGreaterThanOrEqual(4);
    expect(sim.taskCount('/web', 'TASK_RUNNING')).toBe(4);
    expect(sim.tasks('/web').some((task) => oldTasks.some((old) => old.id === task.id))).toBe(false);
  });
});

describe('MarathonSim virtual tasks', () => {
  it('assigns backendPorts round robin over the launch counter, and starts no server', async () => {
    const sim = await startSim();
    const [a, b] = [await startBackend('a'), await startBackend('b')];
    const spec = { id: '/virt', instances: 3, backendPorts: [a, b], healthChecks: [HTTP_CHECK], taskKillGracePeriodSeconds: 1 };
    const tasks = await sim.deploy(spec);
    expect(tasks.map((task) => task.port)).toEqual([a, b, a]);
    expect(tasks.every((task) => task.state === 'TASK_RUNNING' && task.healthy === true && task.host === '127.0.0.1')).toBe(true);
    // The tasks' ports are our backends (a task server would answer with the task id).
    for (const task of tasks) expect((await httpRequest(`http://127.0.0.1:${task.port}/`)).body).toBe(`backend-${task.port === a ? 'a' : 'b'}`);
    expect(sim.taskStats(tasks[0]!.id)).toBeUndefined();

    await sim.scale('/virt', 4); // launch n = 3
    expect(sim.tasks('/virt').map((task) => task.port)).toEqual([a, b, a, b]);
    const killed = sim.killTask(tasks[1]!.id, { replace: true }); // replacement: n = 4
    await waitFor(() => sim.tasks('/virt').some((task) => task.state === 'TASK_KILLING'), 'TASK_KILLING');
    await killed;
    expect(sim.tasks('/virt').map((task) => task.port)).toEqual([a, a, b, a]);
    expect(sim.tasks('/virt').some((task) => task.id === tasks[1]!.id)).toBe(false);
    // Killing a virtual task leaves the backend alone.
    expect((await httpRequest(`http://127.0.0.1:${b}/`)).body).toBe('backend-b');

    const listed = (await getJson(`${sim.url}/v2/apps/virt`)).json.app;
    expect(listed).toMatchObject({ instances: 4, tasksRunning: 4, tasksHealthy: 4 });
    expect(listed.tasks.map((task: any) => task.ports[0])).toEqual([a, a, b, a]);
    await expect(sim.deploy({ id: '/bad', instances: 1, backendPorts: [] })).rejects.toThrow(/backendPorts/);
  });

  it('kills with wait: false as soon as TASK_KILLING is published', async () => {
    const sim = await startSim();
    const [task] = await sim.deploy({ id: '/slow', instances: 1, taskKillGracePeriodSeconds: 1, backendPorts: [await startBackend('a')] });
    const startedAt = Date.now();
    await sim.killTask(task!.id, { wait: false });
    expect(Date.now() - startedAt).toBeLessThan(500);
    expect(sim.tasks('/slow')).toMatchObject([{ id: task!.id, state: 'TASK_KILLING' }]);
    await waitFor(() => sim.taskCount('/slow') === 0, 'TASK_KILLED', 3000);
  });
});

describe('MarathonSim tasks with several ports', () => {
  it('gives each task its morePorts at indexes 1, 2, ... by launch counter, in listings and events', async () => {
    const sim = await startSim();
    const events: MarathonEvent[] = [];
    sim.onEvent((event) => events.push(event));
    const tasks = await sim.deploy({ id: '/two', instances: 3, morePorts: [[7001, 7002], [8001]] });
    expect(tasks.map((task) => task.ports)).toEqual([
      [tasks[0]!.port, 7001, 8001],
      [tasks[1]!.port, 7002, 8001],
      [tasks[2]!.port, 7001, 8001],
    ]);
    const listed = (await getJson(`${sim.url}/v2/apps/two?embed=app.tasks`)).json.app;
    expect(listed.tasks.map((task: any) => task.ports)).toEqual(tasks.map((task) => task.ports));
    const running = events.filter((e) => e.eventType === 'status_update_event' && e.taskStatus === 'TASK_RUNNING');
    expect(running.map((e) => e.ports as number[]).sort()).toEqual(tasks.map((task) => task.ports).sort());
    expect((await sim.deploy({ id: '/one', instances: 1 }))[0]!.ports).toHaveLength(1);
  });

  it('killLatencyMs: a killed task without a grace period stays TASK_RUNNING and answering, the app already scaled down', async () => {
    const sim = await startSim();
    const [task] = await sim.deploy({ id: '/lazy', instances: 1, killLatencyMs: 300 });
    const scaled = sim.scale('/lazy', 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await getJson(`${sim.url}/v2/apps/lazy?embed=app.tasks`)).json.app).toMatchObject({ instances: 0, tasks: [{ id: task!.id, state: 'TASK_RUNNING' }] });
    expect((await httpRequest(`http://127.0.0.1:${task!.port}/`)).body).toBe(task!.id);
    await scaled;
    expect(sim.taskCount('/lazy')).toBe(0);
  });
});

describe('MarathonSim hooks', () => {
  it('onEvent reports each published event with its publication time, until unsubscribed', async () => {
    const sim = await startSim();
    const seen: Array<{ event: MarathonEvent; publishedAt: number }> = [];
    const unsubscribe = sim.onEvent((event, publishedAt) => seen.push({ event, publishedAt }));
    const before = Date.now();
    const [task] = await sim.deploy({ id: '/web', instances: 1 });
    const running = seen.find(({ event }) => event.eventType === 'status_update_event' && event.taskStatus === 'TASK_RUNNING');
    expect(running?.event).toMatchObject({ taskId: task!.id, appId: '/web' });
    expect(running!.publishedAt).toBeGreaterThanOrEqual(before);
    expect(running!.publishedAt).toBeLessThanOrEqual(Date.now());
    expect(seen).toHaveLength(sim.eventCount());

    unsubscribe();
    const count = seen.length;
    await sim.killTask(task!.id);
    expect(seen).toHaveLength(count);
  });

  it('taskStats counts requests to a real task server, and keeps them after the kill', async () => {
    const sim = await startSim();
    const [task] = await sim.deploy({ id: '/web', instances: 1, taskKillGracePeriodSeconds: 1 });
    expect(sim.taskStats(task!.id)).toEqual({ requests: 0, firstRequestAt: null, lastRequestAt: null });
    const before = Date.now();
    for (let i = 0; i < 3; i += 1) await httpRequest(`http://127.0.0.1:${task!.port}/`);
    const stats = sim.taskStats(task!.id)!;
    expect(stats.requests).toBe(3);
    expect(stats.firstRequestAt).toBeGreaterThanOrEqual(before);
    expect(stats.lastRequestAt).toBeGreaterThanOrEqual(stats.firstRequestAt!);

    let killedAt = 0;
    sim.onEvent((event, publishedAt) => {
      if (event.eventType === 'status_update_event' && event.taskStatus === 'TASK_KILLED') killedAt = publishedAt;
    });
    await sim.killTask(task!.id, { wait: false });
    await httpRequest(`http://127.0.0.1:${task!.port}/`); // still served during the grace period
    await waitFor(() => killedAt > 0, 'TASK_KILLED', 3000);
    const after = sim.taskStats(task!.id)!;
    expect(after.requests).toBe(4);
    expect(after.lastRequestAt).toBeLessThanOrEqual(killedAt);
    expect(sim.tasks('/web')).toEqual([]);
    expect(sim.taskStats('nope.123')).toBeUndefined();
  });

  it('lists fresh JSON after every kind of change (cached app rendering)', async () => {
    const sim = await startSim();
    const listedTasks = async (): Promise<any[]> => (await getJson(`${sim.url}/v2/apps?embed=apps.tasks`)).json.apps[0].tasks;
    const [first] = await sim.deploy({ id: '/web', instances: 2, healthChecks: [HTTP_CHECK] });
    expect(await listedTasks()).toHaveLength(2);
    sim.setHealth(first!.id, false);
    expect((await listedTasks()).find((task) => task.id === first!.id).healthCheckResults[0].alive).toBe(false);
    sim.setStartedAt(first!.id, '2020-01-02T03:04:05.678Z');
    expect((await listedTasks()).find((task) => task.id === first!.id).startedAt).toBe('2020-01-02T03:04:05.678Z');
    await sim.electLeader(0);
    expect((await listedTasks()).every((task) => !('healthCheckResults' in task))).toBe(true);
    await sim.killTask(first!.id);
    expect((await listedTasks()).map((task) => task.id)).not.toContain(first!.id);
    await sim.deploy({ id: '/web', instances: 2, labels: { x: 'y' }, healthChecks: [HTTP_CHECK] });
    const app = (await getJson(`${sim.url}/v2/apps`)).json.apps[0];
    expect(app).toMatchObject({ instances: 2, labels: { x: 'y' }, tasksRunning: 2, deployments: [] });
    expect((await getJson(`${sim.url}/v2/apps/web`)).json.app.tasks).toHaveLength(2);
  });
});

describe('MarathonSim bulk load', () => {
  it('refuses apps without backendPorts, and loads nothing then', async () => {
    const sim = await startSim();
    expect(() => sim.loadBulk([{ id: '/ok', instances: 1, backendPorts: [1234] }, { id: '/real', instances: 1 }])).toThrow(
      /app \/real has no backendPorts/,
    );
    expect(() => sim.loadBulk([{ id: '/twice', instances: 1, backendPorts: [1] }, { id: 'twice', instances: 1, backendPorts: [1] }])).toThrow(
      /given twice/,
    );
    expect(sim.tasks()).toEqual([]);
    expect(sim.eventCount()).toBe(0);
  });

  it('renderListing() renders the listing beforehand: the same listing is served, and later changes still show', async () => {
    const sim = await startSim();
    sim.loadBulk([
      { id: '/one', instances: 2, backendPorts: [1234] },
      { id: '/two', instances: 1, backendPorts: [1235] },
    ]);
    const before = JSON.parse((await httpRequest(`${sim.url}/v2/apps?embed=apps.tasks`)).body);
    expect(sim.renderListing()).toBeGreaterThanOrEqual(0);
    const rendered = JSON.parse((await httpRequest(`${sim.url}/v2/apps?embed=apps.tasks`)).body);
    expect(rendered).toEqual(before);
    await sim.scale('/one', 3);
    const scaled = JSON.parse((await httpRequest(`${sim.url}/v2/apps?embed=apps.tasks`)).body) as { apps: Array<{ id: string; tasks: unknown[] }> };
    expect(scaled.apps.find((app) => app.id === '/one')?.tasks).toHaveLength(3);
    expect(scaled.apps.find((app) => app.id === '/two')?.tasks).toHaveLength(1);
  });

  it('loads 10,000 apps × 10 tasks at once and lists them quickly', async () => {
    const sim = await startSim();
    const ports = [await startBackend('a'), await startBackend('b'), await startBackend('c')];
    const specs: SimAppSpec[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `/bench/app-${i}`,
      instances: 10,
      backendPorts: ports,
      labels: { 'edgeroute.vhosts': `app-${i}.test` },
      healthChecks: i % 2 === 0 ? [HTTP_CHECK] : [],
    }));
    const stream = await openStream(sim);
    const events: string[] = [];
    sim.onEvent((event) => events.push(event.eventType));

    let started = performance.now();
    sim.loadBulk(specs);
    const loadMs = performance.now() - started;
    expect(events).toEqual(['group_change_success']);

    started = performance.now();
    const listing = await httpRequest(`${sim.url}/v2/apps?embed=apps.tasks`);
    const coldMs = performance.now() - started;
    started = performance.now();
    const again = await httpRequest(`${sim.url}/v2/apps?embed=apps.tasks`);
    const warmMs = performance.now() - started;
    const apps = JSON.parse(listing.body).apps as any[];
    expect(again.body).toBe(listing.body);

    started = performance.now();
    for (let i = 0; i < 20; i += 1) expect((await getJson(`${sim.url}/v2/apps/bench/app-${i * 499}?embed=app.tasks`)).json.app.tasks).toHaveLength(10);
    const oneAppMs = (performance.now() - started) / 20;
    console.log(
      `10,000 apps / 100,000 tasks: loadBulk ${loadMs.toFixed(0)} ms; /v2/apps?embed=apps.tasks ` +
        `(${(listing.body.length / 1e6).toFixed(0)} MB, incl. this process receiving it) cold ${coldMs.toFixed(0)} ms, ` +
        `warm ${warmMs.toFixed(0)} ms; /v2/apps/{id} ${oneAppMs.toFixed(1)} ms`,
    );
    // Safety bounds against a blow-up (a quadratic step takes minutes here), not
    // timing goals: those live in bench/. Wide, as both cores may be busy.
    expect(loadMs).toBeLessThan(15_000);
    expect(coldMs).toBeLessThan(20_000);
    expect(warmMs).toBeLessThan(20_000);
    expect(oneAppMs).toBeLessThan(1_000);

    expect(apps).toHaveLength(10_000);
    const tasks = apps.flatMap((app) => app.tasks);
    expect(tasks).toHaveLength(100_000);
    expect(new Set(tasks.map((task) => task.id)).size).toBe(100_000);
    expect(new Set(tasks.map((task) => task.startedAt)).size).toBe(100_000);
    expect(new Set(apps.map((app) => app.version)).size).toBe(10_000);
    expect(tasks.every((task) => task.state === 'TASK_RUNNING' && Date.parse(task.startedAt) < Date.now())).toBe(true);
    expect(apps[0]).toMatchObject({ id: '/bench/app-0', instances: 10, tasksRunning: 10, tasksHealthy: 10 });
    expect(apps[0].tasks[0].id).toMatch(/^bench_app-0\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(apps[0].tasks[0].healthCheckResults[0]).toMatchObject({ alive: true, firstSuccess: apps[0].tasks[0].startedAt });
    expect(apps[1].tasks[0]).not.toHaveProperty('healthCheckResults');
    expect(apps[1].tasks.map((task: any) => task.ports[0])).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0].map((n) => ports[n]));

    // One task among 100,000: the kill and the next listing touch that app only.
    const victim = apps[4321].tasks[3].id as string;
    await sim.scale('/bench/app-4321', 10); // a no-op deployment: still answers quickly
    started = performance.now();
    await sim.killTask(victim);
    const killMs = performance.now() - started;
    expect(killMs).toBeLessThan(1_000);
    const app = (await getJson(`${sim.url}/v2/apps/bench/app-4321`)).json.app;
    expect(app.tasks.map((task: any) => task.id)).not.toContain(victim);
    expect(app.instances).toBe(9);
    await waitFor(() => stream.events('status_update_event').length === 1, 'TASK_KILLED on the stream');
    expect(stream.events('group_change_success')).toHaveLength(1);
  }, 60_000);
});
