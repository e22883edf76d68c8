// p50/p99 per app version on an HAProxy routing node, against known delays:
// an app with a stable version answering at once and a grey one (picked by
// a header through a split policy) answering after 50 ms. HAProxy 2.6 keeps
// no percentile; haproxy.cfg counts a latency histogram per backend in a
// stick table (agent/dataplane/haproxy/latency-histogram.ts), which the
// agent reads with its other counters. Checked where a person reads it:
// /v1/traffic (the dashboard's numbers) and `edgeroute compare --json`
// (published in Redis, added up fleet-wide).
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import type { Comparison } from '../../agent/cli/compare-command.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startHaproxyRoutingNode, type HaproxyRoutingNode } from '../helpers/haproxy-node.js';
import { startStatusBackend, type StatusBackend } from '../helpers/status-backend.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
const GREY_DELAY_MS = 50;
// Slots of 20 s: what the test sends stays in the live window while it reads it.
const TRAFFIC = { trafficIntervalMs: 300, trafficSlotMs: 20_000 };

let redisServer: RedisServer;
let redis: Redis;
let marathon: MarathonSim;
let node: HaproxyRoutingNode;
let stable: StatusBackend;
let grey: StatusBackend;

const shop = (version: string, port: number) => ({
  id: `/shop-${version}`,
  instances: 1,
  backendPorts: [port],
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
});

async function send(count: number, headers: Record<string, string> = {}): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) bodies.push((await httpGet(`${node.haproxy.publicUrl}/`, { host: 'shop.test', headers })).body);
  return bodies;
}

beforeAll(async () => {
  await execa(process.execPath, [BIN, '--version']);
  [redisServer, marathon, stable, grey] = await Promise.all([startRedis(), MarathonSim.start(), startStatusBackend('stable'), startStatusBackend('grey')]);
  redis = new Redis(redisServer.url);
  node = await startHaproxyRoutingNode(marathon.url, { nodeId: 'edge-h', listen: '127.0.0.1:0', redis: redisServer.url, ...TRAFFIC }, { backendPool: 4 });
  await node.agent.ready;
  await marathon.deploy(shop('stable', stable.port));
  await marathon.deploy(shop('grey', grey.port));
  await redis.set('edgeroute:policy:shop', JSON.stringify({ default: 'stable', seed: 's', rules: [{ name: 'canary', match: { header: { name: 'X-Canary', values: ['1'] } }, version: 'grey' }] }));
  await redis.publish('edgeroute:policy-changed', 'shop');
  await waitFor('stable on the node', async () => ((await httpGet(`${node.haproxy.publicUrl}/`, { host: 'shop.test' })).body === 'stable' ? true : undefined), 20_000);
  await waitFor('grey by the header', async () => ((await httpGet(`${node.haproxy.publicUrl}/`, { host: 'shop.test', headers: { 'x-canary': '1' } })).body === 'grey' ? true : undefined), 20_000);
}, 120_000);

afterAll(async () => {
  redis?.disconnect();
  await node?.stop();
  await Promise.all([marathon?.stop(), redisServer?.stop(), stable?.close(), grey?.close()]);
});

type Traffic = { latency: string; apps: Array<{ app: string; versions: Array<{ version: string; requests: number; p50Ms: number | null; p90Ms: number | null; p99Ms: number | null; flags: string[] }> }> };

describe("an HAProxy node's latency per version", () => {
  it('shows p50/p99 from its histogram: the 50 ms version in the 50-100 ms bucket, the other below 50 ms', async () => {
    grey.setDelayMs(GREY_DELAY_MS);
    expect(new Set(await send(40))).toEqual(new Set(['stable']));
    expect(new Set(await send(40, { 'x-canary': '1' }))).toEqual(new Set(['grey']));

    const traffic = await waitFor('the requests in /v1/traffic', async () => {
      const body = JSON.parse((await httpGet(`${node.agent.apiUrl!}/v1/traffic?app=shop`)).body) as Traffic;
      const requests = Object.fromEntries((body.apps[0]?.versions ?? []).map((v) => [v.version, v.requests]));
      return (requests.stable ?? 0) >= 40 && (requests.grey ?? 0) >= 40 ? body : undefined;
    }, 15_000, 250);
    expect(traffic.latency).toBe('histogram');
    const byVersion = Object.fromEntries(traffic.apps[0]!.versions.map((v) => [v.version, v]));
    const [s, g] = [byVersion.stable!, byVersion.grey!];
    // Every grey response took 50 ms or more: its p50 and p99 lie in the (50, 100] ms bucket or above, by
    // linear interpolation within it (Prometheus's histogram_quantile); stable's answers take no time.
    expect(g.p50Ms).toBeGreaterThan(GREY_DELAY_MS);
    expect(g.p50Ms).toBeLessThanOrEqual(100);
    expect(g.p99Ms).toBeGreaterThanOrEqual(g.p50Ms!);
    expect(s.p50Ms).toBeGreaterThan(0);
    expect(s.p50Ms).toBeLessThan(GREY_DELAY_MS);
    expect(s.p99Ms).toBeGreaterThanOrEqual(s.p50Ms!);

    // The same numbers through Redis, as `edgeroute compare` adds them up across the fleet.
    const run = await execa(process.execPath, [BIN, 'compare', 'shop', '--json', '--agent', node.agent.apiUrl as string], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '' } });
    expect(run.exitCode, run.stderr).toBe(0);
    const fleet = JSON.parse(run.stdout) as Comparison;
    expect(fleet.scope).toBe('fleet');
    expect(fleet.latency).toBe('histogram');
    const compared = Object.fromEntries(fleet.versions.map((v) => [v.version, v]));
    expect(compared.grey?.p50Ms).toBeGreaterThan(GREY_DELAY_MS);
    expect(compared.grey?.p50Ms).toBeLessThanOrEqual(100);
    expect(compared.stable?.p50Ms).toBeLessThan(GREY_DELAY_MS);
    expect(compared.stable?.flags).toEqual([]);
  }, 60_000);

  it('flags the version whose latency is clearly worse than the default one', async () => {
    // 300 ms answers on top of the 50 ms ones: a third of grey's 60 requests, so its p90 falls in the
    // (250, 500] ms bucket. 60 requests a side are too few for a p99 (the slowest one or two), enough for a p90.
    grey.setDelayMs(300);
    await send(20, { 'x-canary': '1' });
    await send(20);
    const flagged = await waitFor('grey flagged for its p90', async () => {
      const body = JSON.parse((await httpGet(`${node.agent.apiUrl!}/v1/traffic?app=shop`)).body) as Traffic;
      const versions = Object.fromEntries(body.apps[0]!.versions.map((v) => [v.version, v]));
      return versions.grey?.flags.some((f) => f.startsWith('p90 ')) ? versions : undefined;
    }, 15_000, 250);
    expect(flagged.grey!.requests).toBeLessThan(500);
    expect(flagged.grey!.p90Ms).toBeGreaterThan(250);
    expect(flagged.grey!.flags).toEqual([`p90 ${flagged.grey!.p90Ms!.toFixed(1)} ms (stable ${flagged.stable!.p90Ms!.toFixed(1)} ms)`]);
    expect(flagged.stable!.flags).toEqual([]);
  }, 60_000);

  it('`edgeroute compare --watch --json` prints the numbers again as they change, until Ctrl-C', async () => {
    grey.setDelayMs(0);
    const watch = execa(process.execPath, [BIN, 'compare', 'shop', '--watch', '--json', '--interval', '0.3', '--agent', node.agent.apiUrl as string], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '' } });
    const readings: Comparison[] = [];
    let partial = '';
    watch.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') readings.push(JSON.parse(line) as Comparison);
    });
    try {
      const greyErrors = (c: Comparison) => c.versions.find((v) => v.version === 'grey')?.errors ?? 0;
      await waitFor('a first reading', async () => (readings.length > 0 ? true : undefined), 10_000, 100);
      expect(greyErrors(readings[0]!)).toBe(0);
      grey.setStatus(503);
      expect(new Set(await send(30, { 'x-canary': '1' }))).toEqual(new Set(['grey']));
      grey.setStatus(200);
      const later = await waitFor('a reading with the 5xx', async () => readings.find((c) => greyErrors(c) >= 30), 15_000, 100);
      expect(later.versions.find((v) => v.version === 'grey')?.flags[0]).toMatch(/^5xx /);
      expect(readings.length).toBeGreaterThanOrEqual(2);
    } finally {
      grey.setStatus(200);
      watch.kill('SIGINT');
    }
    const result = await watch;
    expect(result.exitCode, result.stderr).toBe(0);
  }, 60_000);
});
