// Requests in flight per backend, as the admin listener reports them: what
// the agent waits on before a task is killed. Real nginx with two workers,
// real task servers that answer /slow/<ms> late.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../agent/sandbox/free-port.js';
import { httpGet, type HttpReply } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../../test/sim/marathon-sim.js';
import { startTaskServer, type TaskServer } from '../../test/sim/task-server.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { waitForBackends, waitForStatus } from '../helpers/traffic.js';

interface InflightReport {
  worker: number;
  seq: number | null;
  version: string | null;
  at: number;
  backends: Record<string, number>;
}

interface Inflight {
  version: string | null;
  seq: number | null;
  workers: number;
  reports: InflightReport[];
  backends: Record<string, number>;
  settled: boolean;
}

const SLOW_MS = 1_500;

let marathon: MarathonSim;
let node: RoutingNode;
let live: TaskServer | undefined;

const taskIds = (appId: string) => marathon.tasks(appId).map((t) => t.id);

async function inflight(query = ''): Promise<{ body: Inflight; raw: string }> {
  const res = await fetch(`${node.nginx.adminUrl}/edgeroute/inflight${query}`, { headers: { authorization: `Bearer ${node.nginx.adminToken}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  const raw = await res.text();
  return { body: JSON.parse(raw) as Inflight, raw };
}

const total = (backends: Record<string, number>) => Object.values(backends).reduce((a, b) => a + b, 0);

/** Polls until `accept` holds for the admin answer; returns that answer. */
function waitForInflight(what: string, accept: (answer: Inflight) => boolean, query = '', timeoutMs = 5_000): Promise<{ body: Inflight; raw: string }> {
  return waitFor(
    what,
    async () => {
      const answer = await inflight(query);
      return accept(answer.body) ? answer : undefined;
    },
    timeoutMs,
    20,
  );
}

/** `count` concurrent requests of `path` to `host`, started now. */
function fire(host: string, path: string, count: number): Promise<HttpReply[]> {
  return Promise.all(Array.from({ length: count }, () => httpGet(`${node.nginx.publicUrl}${path}`, { host, timeoutMs: 15_000 })));
}

beforeAll(async () => {
  marathon = await MarathonSim.start();
  node = await startRoutingNode(marathon.url);
});

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
  await live?.close();
});

describe('in-flight requests per backend on the admin listener', () => {
  it('counts slow requests on the tasks serving them while they run, and nothing once they are done', async () => {
    const tasks = (await marathon.deploy({ id: '/slow', instances: 2, labels: { 'edgeroute.vhosts': 'slow.test' } })).map((t) => t.id);
    await waitForBackends(node.nginx.publicUrl, 'slow.test', tasks);
    const idle = await waitForInflight('every worker on the current table, nothing in flight', (a) => a.settled && total(a.backends) === 0);
    expect(idle.raw).toContain('"backends":{}');

    const started = Date.now();
    const replies = fire('slow.test', `/slow/${SLOW_MS}`, 6);
    const { body: busy } = await waitForInflight('6 requests in flight', (a) => total(a.backends) === 6);
    // Still within the requests' lifetime: the counts are of requests in flight, not of requests seen.
    expect(Date.now() - started).toBeLessThan(SLOW_MS);
    expect(Object.keys(busy.backends).sort()).toEqual([...tasks].sort());
    for (const id of tasks) expect(busy.backends[id]).toBeGreaterThanOrEqual(1);
    expect(busy.settled).toBe(true);
    expect(busy.workers).toBe(2);
    expect(busy.reports.map((r) => r.worker)).toEqual([0, 1]);
    for (const report of busy.reports) {
      expect(report.version).toBe(busy.version);
      expect(report.seq).toBe(busy.seq);
      expect(report.at).toBeGreaterThan(started - 60_000);
    }
    expect(busy.reports.reduce((sum, r) => sum + total(r.backends), 0)).toBe(6);

    // Only the tasks asked for.
    const [first] = tasks as [string, string];
    const { body: one } = await inflight(`?tasks=${encodeURIComponent(first)},no-such-task`);
    expect(Object.keys(one.backends)).toEqual([first]);
    expect(one.backends[first]).toBe(busy.backends[first]);

    const done = await replies;
    expect(done.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(SLOW_MS);
    const after = await waitForInflight('the requests to leave the counts', (a) => total(a.backends) === 0);
    expect(after.body.backends).toEqual({});
    expect(after.raw).toContain('"backends":{}');
    for (const report of after.body.reports) expect(report.backends).toEqual({});
    expect(after.body.settled).toBe(true);
  });

  it('moves a retried request to the peer that serves it and leaves no count behind', async () => {
    live = await startTaskServer('live', '127.0.0.1');
    const dead = await freePort();
    await marathon.deploy({ id: '/flaky', instances: 2, backendPorts: [live.port, dead], labels: { 'edgeroute.vhosts': 'flaky.test' } });
    const byPort = new Map(marathon.tasks('/flaky').map((t) => [t.port, t.id]));
    const liveTask = byPort.get(live.port) as string;
    const deadTask = byPort.get(dead) as string;
    expect(liveTask).toBeDefined();
    expect(deadTask).toBeDefined();
    await waitForStatus(node.nginx.publicUrl, 'flaky.test', 200);
    const query = `?tasks=${encodeURIComponent(liveTask)},${encodeURIComponent(deadTask)}`;

    // Quick requests until attempts on the refusing task show in the metrics: it is in the table.
    await waitFor('retries in the metrics', async () => {
      for (let i = 0; i < 4; i++) expect((await httpGet(`${node.nginx.publicUrl}/`, { host: 'flaky.test' })).status).toBe(200);
      const res = await fetch(`${node.nginx.adminUrl}/metrics`, { headers: { authorization: `Bearer ${node.nginx.adminToken}` } });
      const failures = Number(/edgeroute_upstream_failures_total\{app="\/flaky",version="[^"]*"\} (\d+)/.exec(await res.text())?.[1] ?? 0);
      return failures >= 2 ? true : undefined;
    });
    await waitForInflight('every worker on the current table, nothing in flight', (a) => a.settled && total(a.backends) === 0);

    // Each worker alternates between the two peers, so some of these try the refusing one first.
    const replies = fire('flaky.test', `/slow/${SLOW_MS}`, 6);
    const { body: busy } = await waitForInflight('6 requests on the live task', (a) => a.backends[liveTask] === 6, query);
    // The refusing task keeps no count of the requests that left it.
    expect(busy.backends).toEqual({ [liveTask]: 6 });
    const done = await replies;
    expect(done.map((r) => `${r.status} ${r.body}`)).toEqual(Array(6).fill('200 live'));
    const after = await waitForInflight('the retried requests to leave the counts', (a) => total(a.backends) === 0);
    expect(after.raw).toContain('"backends":{}');
  });

  it('moves the requests of a task that dies mid-request to the task that retries them', async () => {
    const tasks = (await marathon.deploy({ id: '/dying', instances: 2, labels: { 'edgeroute.vhosts': 'dying.test' } })).map((t) => t.id);
    await waitForBackends(node.nginx.publicUrl, 'dying.test', tasks);
    await waitForInflight('every worker on the current table', (a) => a.settled);
    const [victim, survivor] = tasks as [string, string];
    const query = `?tasks=${encodeURIComponent(victim)},${encodeURIComponent(survivor)}`;

    const replies = fire('dying.test', `/slow/${SLOW_MS}`, 4);
    const { body: busy } = await waitForInflight('4 requests in flight', (a) => total(a.backends) === 4, query);
    expect(busy.backends[victim]).toBeGreaterThanOrEqual(1);

    // The task's process dies: its connections are cut, and nginx retries them on the other task.
    await marathon.killTask(victim);
    const { body: moved } = await waitForInflight('the requests to move to the survivor', (a) => a.backends[survivor] === 4, query);
    expect(moved.backends).toEqual({ [survivor]: 4 });
    const done = await replies;
    expect(done.map((r) => `${r.status} ${r.body}`)).toEqual(Array(4).fill(`200 ${survivor}`));
    await waitForInflight('nothing in flight', (a) => total(a.backends) === 0 && a.settled);
  });

  it('refuses a request without the admin token', async () => {
    expect((await fetch(`${node.nginx.adminUrl}/edgeroute/inflight`)).status).toBe(401);
    const wrong = await fetch(`${node.nginx.adminUrl}/edgeroute/inflight`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: 'missing or wrong admin token' });
  });
});
