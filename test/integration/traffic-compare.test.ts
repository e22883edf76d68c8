// `edgeroute compare` and the agent's traffic API against known traffic: two
// nginx routing nodes on one Redis, an app with a stable and a grey version
// (a header picks grey), and requests counted by the test. One node's
// numbers come from its own nginx counters; the fleet's are every node's,
// published in Redis and added up by the command.
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../agent/sandbox/http-get.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import type { Comparison } from '../../agent/cli/compare-command.js';
import { MarathonSim } from '../sim/marathon-sim.js';
import { startRoutingNode, type RoutingNode } from '../helpers/routing-node.js';
import { startStatusBackend, type StatusBackend } from '../helpers/status-backend.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'edgeroute.js');
// Slots of 8 s: the live window (this slot and the one before) holds what the test sends for 8-16 s, time
// for the commands to read it on a busy machine; the probes of the setup leave it within 16 s.
const SLOT_MS = 8_000;
const TRAFFIC = { trafficIntervalMs: 300, trafficSlotMs: SLOT_MS };

let redisServer: RedisServer;
let redis: Redis;
let marathon: MarathonSim;
let a: RoutingNode;
let b: RoutingNode;
let stable: StatusBackend;
let grey: StatusBackend;

const shop = (version: string, port: number) => ({
  id: `/shop-${version}`,
  instances: 1,
  backendPorts: [port],
  labels: { 'edgeroute.vhosts': 'shop.test', 'edgeroute.app': 'shop', 'edgeroute.version': version },
});

async function send(node: RoutingNode, count: number, headers: Record<string, string> = {}): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const reply = await httpGet(`${node.nginx.publicUrl}/`, { host: 'shop.test', headers });
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
  }
  return statuses;
}

function compare(node: RoutingNode, ...args: string[]) {
  return execa(process.execPath, [BIN, 'compare', 'shop', '--agent', node.agent.apiUrl as string, ...args], { reject: false, env: { EDGEROUTE_ADMIN_TOKEN: '' } });
}

async function comparison(node: RoutingNode, ...args: string[]): Promise<Comparison> {
  const run = await compare(node, '--json', ...args);
  expect(run.exitCode, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Comparison;
}

const requestsOf = (c: Comparison) => Object.fromEntries(c.versions.map((v) => [v.version, v.requests]));

beforeAll(async () => {
  // bin/edgeroute.js builds dist/ first when a source is newer: not while a window is open.
  await execa(process.execPath, [BIN, '--version']);
  [redisServer, marathon, stable, grey] = await Promise.all([startRedis(), MarathonSim.start(), startStatusBackend('stable'), startStatusBackend('grey')]);
  redis = new Redis(redisServer.url);
  [a, b] = await Promise.all(
    ['edge-a', 'edge-b'].map((nodeId) => startRoutingNode(marathon.url, { redis: redisServer.url, nodeId, listen: '127.0.0.1:0', ...TRAFFIC }, { redis: redisServer.url })),
  );
  await Promise.all([a.agent.ready, b.agent.ready]);
  await marathon.deploy(shop('stable', stable.port));
  await marathon.deploy(shop('grey', grey.port));
  await redis.set('edgeroute:policy:shop', JSON.stringify({ default: 'stable', seed: 's', rules: [{ name: 'canary', match: { header: { name: 'X-Canary', values: ['1'] } }, version: 'grey' }] }));
  await redis.publish('edgeroute:policy-changed', 'shop');
  // Both versions reachable on both nodes, the policy in force on every worker.
  for (const node of [a, b]) {
    await waitFor('stable on the node', async () => ((await httpGet(`${node.nginx.publicUrl}/`, { host: 'shop.test' })).body === 'stable' ? true : undefined), 15_000);
    await waitFor('grey by the header on every worker', async () => {
      for (let i = 0; i < 8; i++) if ((await httpGet(`${node.nginx.publicUrl}/`, { host: 'shop.test', headers: { 'x-canary': '1' } })).body !== 'grey') return undefined;
      return true;
    }, 15_000);
  }
}, 120_000);

afterAll(async () => {
  redis?.disconnect();
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([marathon?.stop(), redisServer?.stop(), stable?.close(), grey?.close()]);
});

/** The fleet's numbers as the agent serves them (what the command reads), added up as the command does. */
async function fleetNow(node: RoutingNode): Promise<Record<string, number>> {
  const res = await fetch(`${node.agent.apiUrl}/v1/traffic/fleet?app=shop`);
  const body = (await res.json()) as { total: { versions: Array<{ version: string; requests: number }> } };
  return Object.fromEntries(body.total.versions.map((v) => [v.version, v.requests]));
}

describe('edgeroute compare', () => {
  it("adds up every node's requests per version, and flags the version answering 5xx", async () => {
    // The probes of the setup leave the live window first (once nginx flushed them, within a second, and the
    // agents read them); what is sent then stays in it for one slot at least.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await waitFor('the probes to leave the live window', async () => (Object.keys(await fleetNow(a)).length === 0 ? true : undefined), 3 * SLOT_MS);

    grey.setStatus(503);
    expect(await send(a, 60)).toEqual(new Map([[200, 60]]));
    expect(await send(a, 20, { 'x-canary': '1' })).toEqual(new Map([[503, 20]]));
    expect(await send(b, 40)).toEqual(new Map([[200, 40]]));
    grey.setStatus(200);
    await waitFor('the fleet to count every request', async () => {
      const counted = await fleetNow(a);
      return counted.stable === 100 && counted.grey === 20 ? true : undefined;
    }, SLOT_MS);

    const [fleet, local, text] = await Promise.all([comparison(a), comparison(a, '--node-only'), compare(a)]);
    expect(fleet.scope).toBe('fleet');
    expect(fleet.nodes).toEqual(['edge-a', 'edge-b']);
    expect(fleet.defaultVersion).toBe('stable');
    expect(requestsOf(fleet)).toEqual({ stable: 100, grey: 20 });
    const [s, g] = fleet.versions;
    expect([s?.version, g?.version]).toEqual(['stable', 'grey']);
    expect([s?.errors, s?.errorRatio]).toEqual([0, 0]);
    expect([g?.errors, g?.errorRatio]).toEqual([20, 1]);
    // The 5xx alone: grey's 20 requests are too few for a latency quantile (one slow answer would be its p99).
    expect(g?.flags).toEqual(['5xx 100.0 % (stable 0.0 %)']);
    expect(s?.flags).toEqual([]);
    // Requests per second: each node's count over its own window, added.
    expect(s!.requestsPerSecond + g!.requestsPerSecond).toBeCloseTo(fleet.requestsPerSecond, 6);
    expect(s!.share! + g!.share!).toBeCloseTo(1, 6);
    // Latency from nginx's histogram (how long it took is the machine's business, not this test's).
    expect(s?.p50Ms).toBeGreaterThan(0);
    expect(s!.p99Ms).toBeGreaterThanOrEqual(s!.p50Ms!);
    // nginx's histogram starts at 1 ms and 2.5 ms, so a fast app's p50 does not read as "5 ms or less".
    const published = (await (await fetch(`${a.agent.apiUrl}/v1/traffic/fleet?app=shop`)).json()) as { nodes: Array<{ bounds: number[] | null }> };
    expect(published.nodes.map((n) => n.bounds?.slice(0, 3))).toEqual([
      [0.001, 0.0025, 0.005],
      [0.001, 0.0025, 0.005],
    ]);

    // The node alone: its own 60 + 20, not the other node's 40; its shares are its requests'.
    expect(local.scope).toBe('node');
    expect(local.nodes).toEqual(['edge-a']);
    expect(requestsOf(local)).toEqual({ stable: 60, grey: 20 });
    expect(local.versions.map((v) => v.share)).toEqual([expect.closeTo(0.75, 9), expect.closeTo(0.25, 9)]);

    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^shop: [\d.]+ requests\/s, fleet: 2 nodes \(edge-a, edge-b\)$/m);
    expect(text.stdout).toMatch(/^version\s+req\/s\s+share\s+5xx\s+p50\s+p99$/m);
    expect(text.stdout).toMatch(/^stable \*\s+[\d.]+\s+[\d.]+ %\s+0\.0 %/m);
    expect(text.stdout).toMatch(/^grey\s+.*\s100\.0 %\s.*WORSE: 5xx 100\.0 % \(stable 0\.0 %\)(; p99 .*)?$/m);
  }, 60_000);

  it('says so for an app that served nothing', async () => {
    const run = await execa(process.execPath, [BIN, 'compare', 'nothing-here', '--agent', a.agent.apiUrl as string], { reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('no requests in the live window');
  });
});
