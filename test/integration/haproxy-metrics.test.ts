// Per app and version metrics of an HAProxy routing node: requests through a
// real HAProxy show up on the agent's /metrics under the app's labels, read
// from HAProxy's own counters (show stat), and stay monotonic when HAProxy
// restarts (its counters start again from zero).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { waitForBackends } from '../helpers/traffic.js';

let marathon: MarathonSim;
let node: HaproxyRoutingNode;
const STATUSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

beforeAll(async () => {
  marathon = await MarathonSim.start();
  // The traffic sampler reads every 300 ms (the dashboard's and `edgeroute compare`'s numbers).
  node = await startHaproxyRoutingNode(marathon.url, { nodeId: 'edge-metrics', listen: '127.0.0.1:0', trafficIntervalMs: 300, trafficSlotMs: 10_000 }, { backendPool: 3 });
  await node.agent.ready;
}, 30_000);

afterAll(async () => {
  await node?.stop();
  await marathon?.stop();
});

async function scrape(): Promise<string> {
  const reply = await httpGet(`${node.agent.apiUrl!}/metrics`);
  expect(reply.status).toBe(200);
  return reply.body;
}

/** The value of one series, or undefined when absent. */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = inside.split(/,(?=[a-z_]+=")/);
    if (have.length === want.length && want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function send(host: string, count: number, path = '/'): Promise<void> {
  for (let i = 0; i < count; i++) await httpGet(`${node.haproxy.publicUrl}${path}`, { host });
}

/** Waits for a scrape in which `check` holds (HAProxy is read at most once a second). */
async function scrapeUntil(what: string, check: (text: string) => boolean): Promise<string> {
  return waitFor(what, async () => {
    const text = await scrape();
    return check(text) ? text : undefined;
  }, 10_000, 250);
}

describe("an HAProxy node's /metrics", () => {
  const web = { app: '/web', version: 'stable' };

  it("counts an app's requests by status class under its app and version, with the nginx plugin's metric name", async () => {
    await marathon.deploy({ id: '/web', instances: 2, labels: { 'edgeroute.vhosts': 'web.test' } });
    await waitForBackends(node.haproxy.publicUrl, 'web.test', marathon.tasks('/web').map((t) => t.id));
    const before = value(await scrapeUntil('/web in the metrics', (t) => value(t, 'edgeroute_requests_total', { ...web, status: '2xx' }) !== undefined), 'edgeroute_requests_total', { ...web, status: '2xx' })!;
    await send('web.test', 25);
    const text = await scrapeUntil('25 more requests of /web', (t) => value(t, 'edgeroute_requests_total', { ...web, status: '2xx' }) === before + 25);
    expect(text).toContain('# TYPE edgeroute_requests_total counter');
    expect(value(text, 'edgeroute_requests_total', { ...web, status: '5xx' })).toBe(0);
    expect(value(text, 'edgeroute_haproxy_sessions_total', { ...web, mode: 'http' })).toBeGreaterThanOrEqual(before + 25);
    expect(value(text, 'edgeroute_haproxy_bytes_out_total', { ...web, mode: 'http' })).toBeGreaterThan(0);
    expect(value(text, 'edgeroute_haproxy_current_sessions', { ...web, mode: 'http' })).toBe(0);
    expect(value(text, 'edgeroute_haproxy_response_time_average_seconds', { ...web, mode: 'http' })).toBeGreaterThanOrEqual(0);
    expect(value(text, 'edgeroute_haproxy_stats_up', {})).toBeUndefined();
    expect(text).toMatch(/^edgeroute_haproxy_stats_up 1$/m);
    // Per task: every task's requests add up to the app's.
    const perTask = marathon.tasks('/web').map((t) => value(text, 'edgeroute_haproxy_server_responses_total', { ...web, task: t.id, status: '2xx' }) ?? 0);
    expect(perTask.every((n) => n > 0)).toBe(true);
    // The latency histogram haproxy.cfg counts, under the nginx plugin's name: every response in +Inf.
    expect(text).toContain('# TYPE edgeroute_request_duration_seconds histogram');
    const count = value(text, 'edgeroute_request_duration_seconds_count', web)!;
    expect(count).toBeGreaterThanOrEqual(before + 25);
    expect(value(text, 'edgeroute_request_duration_seconds_bucket', { ...web, le: '+Inf' })).toBe(count);
    expect(value(text, 'edgeroute_request_duration_seconds_bucket', { ...web, le: '0.001' })).toBeLessThanOrEqual(value(text, 'edgeroute_request_duration_seconds_bucket', { ...web, le: '10' })!);
    // 404s for unknown hosts belong to no app.
    expect(text).not.toMatch(/edgeroute_requests_total\{[^}]*app="edgeroute-no-app"/);
  }, 30_000);

  it("gives the agent's traffic sampler the same counters: /v1/traffic per version, with p50/p99 from the node's latency histogram", async () => {
    await send('web.test', 30);
    type Traffic = { latency: string; apps: Array<{ app: string; defaultVersion: string; versions: Array<{ version: string; requests: number; errorRatio: number; share: number; p50Ms: number | null; meanMs: number | null }> }> };
    const traffic = await waitFor('the requests in /v1/traffic', async () => {
      const body = JSON.parse((await httpGet(`${node.agent.apiUrl!}/v1/traffic?app=/web`)).body) as Traffic;
      return (body.apps[0]?.versions[0]?.requests ?? 0) >= 30 ? body : undefined;
    }, 10_000, 250);
    // haproxy.cfg counts a latency histogram (HAProxy keeps none): quantiles, and HAProxy's own mean besides.
    expect(traffic.latency).toBe('histogram');
    const [web] = traffic.apps;
    expect(web?.defaultVersion).toBe('stable');
    expect(web?.versions.map((v) => [v.version, v.share, v.errorRatio])).toEqual([['stable', 1, 0]]);
    expect(web?.versions[0]?.p50Ms).toBeGreaterThan(0);
    expect(web?.versions[0]?.meanMs).toBeGreaterThanOrEqual(0);
  }, 30_000);

  it('keeps the counters monotonic across an HAProxy restart', async () => {
    const key = { ...web, status: '2xx' };
    const before = value(await scrape(), 'edgeroute_requests_total', key)!;
    expect(before).toBeGreaterThanOrEqual(25);
    await node.haproxy.restart();
    await waitForBackends(node.haproxy.publicUrl, 'web.test', marathon.tasks('/web').map((t) => t.id));
    // HAProxy's own counter starts again from the requests since the restart; ours goes on from `before`.
    await send('web.test', 10);
    const own = Number(/^pool-\d+,BACKEND,(?:[^,]*,){38}(\d+)/m.exec(await node.haproxy.runtime('show stat -1 2 -1'))?.[1] ?? NaN);
    await scrapeUntil('the requests after the restart added on', (t) => (value(t, 'edgeroute_requests_total', key) ?? 0) >= before + 10);
    const after = value(await scrape(), 'edgeroute_requests_total', key)!;
    expect(after).toBeGreaterThanOrEqual(before + 10);
    expect(after).toBeGreaterThan(own);
  }, 30_000);

  it('drops the series of a removed app, and does not hand its totals to the app that gets its backend', async () => {
    const hostsMap = `${node.haproxy.dir}/hosts.map`;
    const backendOf = async (host: string) => new RegExp(` ${host.replace('.', '\\.')} (\\S+)`).exec(await node.haproxy.runtime(`show map ${hostsMap}`))?.[1];
    await marathon.deploy({ id: '/api', instances: 1, labels: { 'edgeroute.vhosts': 'api.test' } });
    await waitForBackends(node.haproxy.publicUrl, 'api.test', marathon.tasks('/api').map((t) => t.id));
    await send('api.test', 30);
    await scrapeUntil('/api counted', (t) => value(t, 'edgeroute_requests_total', { app: '/api', version: 'stable', status: '2xx' })! >= 30);
    const apiBackend = await backendOf('api.test');
    // The pool has 3 backends: with /web and /filler holding two, /next can only get /api's.
    await marathon.deploy({ id: '/filler', instances: 1, labels: { 'edgeroute.vhosts': 'filler.test' } });
    await waitForBackends(node.haproxy.publicUrl, 'filler.test', marathon.tasks('/filler').map((t) => t.id));
    await marathon.removeApp('/api');
    await scrapeUntil('/api gone from the metrics', (t) => value(t, 'edgeroute_requests_total', { app: '/api', version: 'stable', status: '2xx' }) === undefined);
    await marathon.deploy({ id: '/next', instances: 1, labels: { 'edgeroute.vhosts': 'next.test' } });
    // Every request that reached /next's backend (not a 404 from before its host was mapped) is counted.
    let reached = 0;
    await waitFor('/next routed', async () => {
      const reply = await httpGet(`${node.haproxy.publicUrl}/`, { host: 'next.test' });
      if (reply.status !== 404) reached++;
      return reply.status === 200 ? true : undefined;
    }, 20_000, 100);
    expect(await backendOf('next.test')).toBe(apiBackend);
    await send('next.test', 3);
    reached += 3;
    const text = await scrapeUntil('/next counted', (t) => (value(t, 'edgeroute_requests_total', { app: '/next', version: 'stable', status: '2xx' }) ?? 0) >= 3);
    const counted = STATUSES.reduce((sum, status) => sum + (value(text, 'edgeroute_requests_total', { app: '/next', version: 'stable', status }) ?? 0), 0);
    expect(counted).toBeLessThanOrEqual(reached);
    expect(counted).toBeGreaterThanOrEqual(3);
  }, 45_000);
});
