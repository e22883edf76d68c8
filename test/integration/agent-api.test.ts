// The agent's HTTP API and live feed, through a real routing node.
import { execa } from 'execa';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends } from '../helpers/traffic.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
let redis: RedisServer;
let marathon: MarathonSim;
let node: RoutingNode;
let api: string;
let feed: Array<Record<string, unknown>>;
let socket: WebSocket;

/** The release as package.json states it: the agent, the CLI and the plugin all report it. */
const RELEASE = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);
const json = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${api}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const write = (method: string, path: string, body?: unknown, token: string | null = node.nginx.adminToken) =>
  json(path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

beforeAll(async () => {
  redis = await startRedis();
  marathon = await MarathonSim.start({ heartbeatMs: 300 });
  node = await startRoutingNode(marathon.url, { redis: redis.url, listen: '127.0.0.1:0', readyMaxAgeMs: 500, stallTimeoutMs: 2_000, nodeId: 'edge-a' });
  await node.agent.ready;
  api = node.agent.apiUrl as string;
  feed = [];
  socket = new WebSocket(`${api.replace('http', 'ws')}/v1/events`);
  socket.on('message', (data) => feed.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await waitFor('the feed to say hello', () => (feed.some((m) => m.type === 'hello') ? true : undefined));
});

afterAll(async () => {
  socket?.close();
  await node?.stop();
  await marathon?.stop();
  await redis?.stop();
});

describe('health', () => {
  it('answers /healthz, and /readyz once synced with Marathon and acknowledged by nginx', async () => {
    const healthz = await json('/healthz');
    expect(healthz).toMatchObject({ status: 200, body: { status: 'ok', version: RELEASE } });
    await marathon.deploy({ id: '/web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test' } });
    await waitForBackends(node.nginx.publicUrl, 'web.test', taskIds('/web'));
    await waitFor('ready', async () => ((await json('/readyz')).status === 200 ? true : undefined));
    // The agent asks nginx which plugin it runs (every second): the same release.
    const health = await waitFor('the plugin version', async () => {
      const body = (await json('/healthz')).body;
      return body.pluginVersion !== null ? body : undefined;
    });
    expect(health).toEqual({ status: 'ok', version: RELEASE, pluginVersion: RELEASE });
    expect((await json('/v1/state')).body.edgeroute).toEqual({ version: RELEASE, pluginVersion: RELEASE });
    const state = (await json('/v1/state')).body;
    expect(state.dataPlane).toEqual({ kind: 'nginx', holds: state.version });
    expect(node.logs.has((l) => l.msg === 'nginx runs the plugin of this release' && l.pluginVersion === RELEASE)).toBe(true);
  });

  it('turns /readyz to 503 with the reason when Marathon stays away', async () => {
    await marathon.setUnavailable(true);
    const notReady = await waitFor('not ready', async () => {
      const reply = await json('/readyz');
      return reply.status === 503 ? reply.body : undefined;
    });
    expect(String((notReady.reasons as string[])[0])).toContain('the Marathon event stream is down');
    await marathon.setUnavailable(false);
    await waitFor('ready again', async () => ((await json('/readyz')).status === 200 ? true : undefined), 15_000);
  });
});

describe('/v1/state', () => {
  it('shows each backend with its state, weight and the reason', async () => {
    await marathon.deploy({ id: '/slow', instances: 1, labels: { 'edgeroute.vhosts': 'slow.test', 'edgeroute.publishDelaySeconds': '3600' } });
    const app = await waitFor('the app in the state', async () => {
      const { body } = await json('/v1/state');
      return (body.apps as Array<Record<string, unknown>>).find((a) => a.id === '/slow');
    });
    const backend = ((app.versions as Array<Record<string, unknown>>)[0]?.backends as Array<Record<string, unknown>>)[0];
    expect(backend).toMatchObject({ state: 'waiting', weight: 0, baseWeight: 100 });
    expect(String(backend?.reason)).toMatch(/^waiting \d+ s of publish delay$/);
    const { body } = await json('/v1/state');
    expect(body).toMatchObject({ marathon: { connected: true }, redis: { configured: true, connected: true } });
    expect(body.version).toBe(body.nginxVersion);
  });
});

describe('/v1/policies', () => {
  it('refuses writes without the token, refuses invalid policies like the CLI, and stores valid ones', async () => {
    expect((await write('PUT', '/v1/policies/shop', { rules: [] }, null)).status).toBe(401);
    expect((await write('PUT', '/v1/policies/shop', { rules: [] }, 'not-the-token-at-all')).status).toBe(401);
    const bad = await write('PUT', '/v1/policies/shop', { rules: [{ match: { percentage: { value: 5, by: 'session' } }, version: 'grey' }] });
    expect(bad.status).toBe(400);
    expect(String((bad.body.errors as string[])[0])).toContain('/rules/0/match/percentage/by');

    const policy = { default: 'stable', rules: [{ name: 'testers', match: { cookie: { name: 'grey', values: ['1'] } }, version: 'grey' }] };
    expect((await write('PUT', '/v1/policies/shop', policy)).status).toBe(200);
    expect((await json('/v1/policies/shop')).body).toEqual(policy);
    expect((await json('/v1/policies')).body).toEqual({ policies: { shop: policy } });
    await waitFor('the feed to tell', () => (feed.some((m) => m.type === 'policy-changed' && m.app === 'shop') ? true : undefined));

    expect((await write('DELETE', '/v1/policies/shop')).status).toBe(200);
    expect((await json('/v1/policies/shop')).status).toBe(404);
  });

  it('lists a policy typed into Redis that is not JSON apart, and still lists the others', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url);
    const policy = { default: 'stable', rules: [] };
    try {
      await client.set('edgeroute:policy:good', JSON.stringify(policy));
      await client.set('edgeroute:policy:broken', '{"rules": [');
      const list = await json('/v1/policies');
      expect(list.status).toBe(200);
      expect(list.body.policies).toEqual({ good: policy });
      expect(list.body.invalid).toMatchObject({ broken: { text: '{"rules": [', error: expect.stringContaining('not valid JSON') } });
      const one = await json('/v1/policies/broken');
      expect(one.status).toBe(422);
      expect(one.body).toMatchObject({ text: '{"rules": [', error: expect.stringContaining('not valid JSON') });
    } finally {
      await client.del('edgeroute:policy:good', 'edgeroute:policy:broken');
      client.disconnect();
    }
  });
});

describe('/metrics', () => {
  it('exposes events, syncs, pushes, connections and backends per state', async () => {
    const text = await (await fetch(`${api}/metrics`)).text();
    expect(text).toMatch(/edgeroute_marathon_events_total\{type="status_update_event"\} \d+/);
    expect(text).toMatch(/edgeroute_syncs_total\{kind="full",result="ok"\} \d+/);
    expect(text).toContain('edgeroute_sync_duration_seconds_bucket');
    expect(text).toContain('edgeroute_push_duration_seconds_count');
    expect(text).toMatch(/edgeroute_marathon_connected 1/);
    expect(text).toMatch(/edgeroute_redis_connected 1/);
    expect(text).toMatch(/edgeroute_backends\{state="published"\} 2/);
    expect(text).toMatch(/edgeroute_backends\{state="waiting"\} 1/);
    expect(text).toContain(`edgeroute_build_info{version="${RELEASE}",plugin_version="${RELEASE}"} 1`);
  });
});

describe('the live feed', () => {
  it('tells publications, and unpublications with their reason', async () => {
    await marathon.deploy({ id: '/feed', instances: 1, labels: { 'edgeroute.vhosts': 'feed.test' }, taskKillGracePeriodSeconds: 1 });
    const [task] = taskIds('/feed');
    await waitFor('published', () => (feed.some((m) => m.type === 'published' && m.taskId === task) ? true : undefined));
    expect(feed.some((m) => m.type === 'routing-changed' && (m.changed as string[]).includes('/feed'))).toBe(true);
    await marathon.killTask(task as string, { wait: false });
    const gone = await waitFor('unpublished', () => feed.find((m) => m.type === 'unpublished' && m.taskId === task));
    expect(gone.reason).toBe('draining: Marathon is killing the task');
  });

  it('is what `edgeroute watch` prints', async () => {
    const watch = execa(process.execPath, [BIN, 'watch', '--agent', api], { reject: false, buffer: false });
    let output = '';
    watch.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor('watch to connect', () => (output.includes('connected; table') ? true : undefined));
      expect(output).toMatch(/connected; table \S+ \(nginx node\)/);
      const before = new Set(taskIds('/web'));
      await marathon.scale('/web', 3);
      const added = taskIds('/web').find((id) => !before.has(id)) as string;
      await waitFor('watch to print the publication', () => (output.includes(`published   /web stable ${added}`) ? true : undefined));
    } finally {
      watch.kill('SIGINT');
      await watch;
    }
  });
});

describe('the fleet', () => {
  it('lists the live routing nodes; a node that stops leaves, one whose heartbeat is stale stops counting', async () => {
    const other = await startRoutingNode(marathon.url, { redis: redis.url, nodeId: 'edge-b' });
    try {
      const both = await waitFor('both nodes', async () => {
        const { body } = await json('/v1/nodes');
        const nodes = body.nodes as Array<{ nodeId: string; live: boolean }>;
        return nodes.filter((n) => n.live).length === 2 ? body : undefined;
      });
      expect(both.self).toBe('edge-a');
      expect((both.nodes as Array<{ nodeId: string }>).map((n) => n.nodeId)).toEqual(['edge-a', 'edge-b']);

      // A node that died without saying so: its last heartbeat is older than the TTL.
      const { Redis } = await import('ioredis');
      const client = new Redis(redis.url);
      await client.hset('edgeroute:nodes', 'edge-dead', JSON.stringify({ nodeId: 'edge-dead', heartbeatAt: Date.now() - 15_000, startedAt: 0, tableVersion: null, apiUrl: null }));
      client.disconnect();
      const withDead = (await json('/v1/nodes')).body.nodes as Array<{ nodeId: string; live: boolean }>;
      expect(withDead.find((n) => n.nodeId === 'edge-dead')?.live).toBe(false);
    } finally {
      await other.stop();
    }
    const after = (await json('/v1/nodes')).body.nodes as Array<{ nodeId: string; live: boolean }>;
    expect(after.filter((n) => n.live).map((n) => n.nodeId)).toEqual(['edge-a']);
  });
});

describe('announce-before-kill operations', () => {
  const stream = async (path: string, body: unknown, token: string | null = node.nginx.adminToken) => {
    const res = await fetch(`${api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type'), lines: text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
  };

  it('needs the token and checks the body against its schema', async () => {
    expect((await stream('/v1/kill', { tasks: ['x.1'] }, null)).status).toBe(401);
    expect((await stream('/v1/kill', { tasks: [] })).status).toBe(400);
    expect((await stream('/v1/scale', { app: '/web', instances: -1 })).status).toBe(400);
    expect((await stream('/v1/rollout', { app: 'shop' })).status).toBe(400);
  });

  it('drains a task through the API, streams the progress, shows the ack in /v1/drains, and kills it', async () => {
    const [drained, ...kept] = taskIds('/web');
    const drain = await stream('/v1/drain', { tasks: [drained] });
    expect(drain.status).toBe(200);
    expect(drain.type).toContain('application/x-ndjson');
    expect(drain.lines.map((l) => l.message)).toContain('edge-a drained');
    expect(drain.lines.at(-1)).toMatchObject({ done: true });
    const { body } = await json('/v1/drains');
    const marks = body.drains as Array<{ taskId: string; operation: string; by: string; acks: Record<string, { inflight: number; settled: boolean }> }>;
    expect(marks).toHaveLength(1);
    expect(marks[0]).toMatchObject({ taskId: drained, operation: 'drain', by: 'api@edge-a' });
    expect(marks[0]?.acks['edge-a']).toMatchObject({ inflight: 0, settled: true });
    // The state tells why the task gets no traffic.
    const state = (await json('/v1/state?app=/web')).body as { apps: Array<{ versions: Array<{ backends: Array<{ taskId: string; state: string; reason: string }> }> }> };
    expect(state.apps[0]?.versions[0]?.backends.find((b) => b.taskId === drained)).toMatchObject({ state: 'draining', reason: 'draining: drain announced by api@edge-a' });
    await waitForBackends(node.nginx.publicUrl, 'web.test', kept);

    const killed = await stream('/v1/kill', { tasks: [drained], scale: true });
    expect(killed.lines.at(-1)).toMatchObject({ done: true });
    expect(taskIds('/web')).toEqual(kept);
    // Marathon no longer lists it, so its mark is gone.
    expect((await json('/v1/drains')).body.drains).toEqual([]);
  });

  it('ends the stream with the error when the operation fails', async () => {
    const reply = await stream('/v1/kill', { tasks: ['no-such.task'] });
    expect(reply.status).toBe(200);
    expect(reply.lines.at(-1)).toEqual({ error: 'Marathon has no running task no-such.task' });
  });
});

describe('--api-reads token', () => {
  it('keeps state, policies, nodes, metrics and the feed behind the token; probes and the dashboard page stay open', async () => {
    const locked = await startRoutingNode(marathon.url, { redis: redis.url, listen: '127.0.0.1:0', nodeId: 'edge-locked', apiReads: 'token' });
    try {
      await locked.agent.ready;
      const base = locked.agent.apiUrl as string;
      const token = locked.nginx.adminToken;
      const status = async (path: string, headers: Record<string, string> = {}) => (await fetch(`${base}${path}`, { headers })).status;
      // Until the agent's Redis connection is up, policies answer 503 (said, not a bare 500).
      await waitFor('the agent connected to Redis', async () => {
        const state = (await (await fetch(`${base}/v1/state`, { headers: { authorization: `Bearer ${token}` } })).json()) as { redis: { connected: boolean } };
        return state.redis.connected ? true : undefined;
      });
      for (const path of ['/v1/state', '/v1/policies', '/v1/nodes', '/v1/drains', '/metrics']) {
        expect(await status(path), path).toBe(401);
        expect(await status(path, { authorization: `Bearer ${token}` }), path).toBe(200);
        expect(await status(path, { authorization: 'Bearer wrong' }), path).toBe(401);
      }
      expect(await status(`/v1/state?token=${token}`)).toBe(200);
      expect(await status('/healthz')).toBe(200);
      expect([200, 503]).toContain(await status('/readyz'));
      expect(await status('/')).toBe(200);

      const open = (url: string) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.on('message', (data) => {
            resolve(String((JSON.parse(data.toString()) as { type: string }).type));
            ws.close();
          });
          ws.on('unexpected-response', (req, res) => {
            resolve(`HTTP ${res.statusCode}`);
            req.destroy();
          });
          ws.on('error', () => resolve('error'));
        });
      const wsBase = `${base.replace('http', 'ws')}/v1/events`;
      expect(await open(wsBase)).toBe('HTTP 401');
      expect(await open(`${wsBase}?token=${token}`)).toBe('hello');
    } finally {
      await locked.stop();
    }
  });
});

describe('stopping', () => {
  it('cuts a feed client that stopped reading and a request whose body never ends, after a short grace', async () => {
    const other = await startRoutingNode(marathon.url, { listen: '127.0.0.1:0' });
    try {
      await other.agent.ready;
      const base = new URL(other.agent.apiUrl as string);
      // A dashboard on a laptop gone to sleep: connected, never answers the close frame.
      const asleep = new WebSocket(`ws://${base.host}/v1/events`);
      await new Promise((resolve) => asleep.once('message', resolve));
      const asleepSocket = (asleep as unknown as { _socket: Socket })._socket;
      asleepSocket.pause();
      const asleepClosed = new Promise((resolve) => asleep.once('close', resolve));
      // A client that sends a tenth of the body it announced.
      const slow = connect(Number(base.port), base.hostname);
      await new Promise((resolve) => slow.once('connect', resolve));
      slow.write(`PUT /v1/policies/web HTTP/1.1\r\nHost: ${base.host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"rules":[`);
      const slowClosed = new Promise((resolve) => slow.once('close', resolve));
      slow.resume();
      await new Promise((resolve) => setTimeout(resolve, 200));

      const started = Date.now();
      await other.agent.stop();
      const tookMs = Date.now() - started;

      // 30 s (ws's close timeout) and never, before.
      expect(tookMs).toBeLessThan(6_000);
      // Both were cut: the laptop wakes up to a closed connection.
      asleepSocket.resume();
      await Promise.all([asleepClosed, slowClosed]);
    } finally {
      await other.nginx.process.stop();
    }
  }, 20_000);
});
