// A node's traffic in Redis (agent/fleet/traffic-publisher.ts, traffic-board.ts)
// against a real redis-server: after each reading only the apps that served
// requests are written, yet what a reader computes from Redis is, app by app,
// the node's own live window; apps that left the window are deleted, a hash
// Redis lost is written whole again, a stopped node's entry expires, and two
// nodes add up.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetAppTraffic, type TrafficWindow } from '../../agent/core/traffic.js';
import { TrafficBoard } from '../../agent/fleet/traffic-board.js';
import { TrafficPublisher } from '../../agent/fleet/traffic-publisher.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';
import { waitFor } from '../../agent/sandbox/wait.js';
import { TrafficHistory, type TrafficDelta } from '../../agent/observe/traffic-history.js';

const BOUNDS = [0.001, 0.01, 0.1];
const SLOT_MS = 15_000;
const OPTS = { slotMs: SLOT_MS, slots: 120, maxSeries: 100 };

let server: RedisServer;
let redis: Redis;
let board: TrafficBoard;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  board = new TrafficBoard(redis, 'edgeroute:');
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

const delta = (app: string, requests: number, version = 'v1'): TrafficDelta => ({
  app,
  version,
  requests,
  errors: requests % 3,
  buckets: [requests - 2, 1, 1, 0],
  latencySeconds: requests * 0.002,
  recentMeanSeconds: null,
});

/** What a reader of Redis computes for each app, next to the node's own window. */
async function compareWithNode(history: TrafficHistory, node: string): Promise<void> {
  const own = history.windows();
  for (const [app, versions] of own) {
    const [published] = await board.read(app, [node]);
    expect(published?.node, app).toBe(node);
    expect(Object.keys(published!.versions).sort(), app).toEqual([...versions.keys()].sort());
    for (const [version, w] of versions) {
      const got = published!.versions[version] as TrafficWindow;
      expect([got.requests, got.errors, got.buckets], `${app} ${version}`).toEqual([w.requests, w.errors, w.buckets]);
      expect(got.requestsPerSecond).toBeCloseTo(w.requestsPerSecond, 9);
      expect(got.meanSeconds).toBeCloseTo(w.meanSeconds!, 9);
    }
  }
}

describe("a node's traffic in Redis", () => {
  it('writes only the apps that served requests, and reads back the same windows as the node', async () => {
    const history = new TrafficHistory(BOUNDS, OPTS);
    let now = 1_000 * SLOT_MS;
    const publisher = new TrafficPublisher(board, 'edge-1', 60_000, () => now);
    const apps = Array.from({ length: 50 }, (_, i) => `/app-${i}`);

    history.record(now, 5_000, [...apps.map((a) => delta(a, 10)), delta('/app-0', 4, 'v2')]);
    expect(await publisher.publish(history, () => 'v1')).toEqual({ full: true, apps: 50, removed: 0 });
    await compareWithNode(history, 'edge-1');

    // One app serves on; the others' entries stay as they are, and still read right.
    for (let i = 1; i <= 3; i++) {
      now += 5_000;
      history.record(now, 5_000, [delta('/app-7', 3 + i)]);
      expect(await publisher.publish(history, () => 'v1')).toEqual({ full: false, apps: 1, removed: 0 });
      await compareWithNode(history, 'edge-1');
    }
    // A new default version is written although the app served nothing.
    now += 5_000;
    history.record(now, 5_000, []);
    expect(await publisher.publish(history, (app) => (app === '/app-9' ? 'v2' : 'v1'))).toEqual({ full: false, apps: 1, removed: 0 });
    expect((await board.read('/app-9', ['edge-1']))[0]?.defaultVersion).toBe('v2');

    // Past the live window (two slots), the idle apps' entries go; the one serving stays.
    now += 2 * SLOT_MS;
    history.record(now, 5_000, [delta('/app-7', 5)]);
    const stats = await publisher.publish(history, (app) => (app === '/app-9' ? 'v2' : 'v1'));
    expect(stats).toEqual({ full: false, apps: 1, removed: 49 });
    expect(await redis.hkeys(board.key('edge-1'))).toEqual(expect.arrayContaining(['', '/app-7']));
    expect(await redis.hlen(board.key('edge-1'))).toBe(2);
    expect(await board.read('/app-3', ['edge-1'])).toEqual([]);
    await compareWithNode(history, 'edge-1');
  });

  it('writes the whole table again when Redis lost the hash', async () => {
    const history = new TrafficHistory(BOUNDS, OPTS);
    let now = 2_000 * SLOT_MS;
    const publisher = new TrafficPublisher(board, 'edge-2', 60_000, () => now);
    history.record(now, 5_000, [delta('/a', 10), delta('/b', 20)]);
    await publisher.publish(history, () => 'v1');
    await redis.del(board.key('edge-2'));
    now += 5_000;
    history.record(now, 5_000, [delta('/a', 1)]);
    expect(await publisher.publish(history, () => 'v1')).toEqual({ full: true, apps: 2, removed: 0 });
    await compareWithNode(history, 'edge-2');
  });

  it("lets a stopped node's numbers expire", async () => {
    const history = new TrafficHistory(BOUNDS, OPTS);
    const publisher = new TrafficPublisher(board, 'edge-3', 300);
    history.record(3_000 * SLOT_MS, 5_000, [delta('/a', 10)]);
    await publisher.publish(history, () => 'v1');
    expect(await board.read('/a', ['edge-3'])).toHaveLength(1);
    await waitFor('the entry to expire', async () => ((await redis.exists(board.key('edge-3'))) === 0 ? true : undefined), 5_000, 50);
    expect(await board.read('/a', ['edge-3'])).toEqual([]);
  });

  it("adds two nodes' windows up, each as of its own clock", async () => {
    const [h1, h2] = [new TrafficHistory(BOUNDS, OPTS), new TrafficHistory(BOUNDS, OPTS)];
    const now = 4_000 * SLOT_MS;
    const [p1, p2] = [new TrafficPublisher(board, 'edge-4', 60_000, () => now), new TrafficPublisher(board, 'edge-5', 60_000, () => now)];
    h1.record(now, 5_000, [delta('/shop', 30), delta('/shop', 10, 'grey')]);
    h2.record(now + 1_000, 10_000, [delta('/shop', 50)]);
    await Promise.all([p1.publish(h1, () => 'v1'), p2.publish(h2, () => 'v1')]);
    const total = fleetAppTraffic('/shop', await board.read('/shop', ['edge-4', 'edge-5']));
    expect(total.nodes).toEqual(['edge-4', 'edge-5']);
    expect(Object.fromEntries(total.versions.map((v) => [v.version, v.requests]))).toEqual({ v1: 80, grey: 10 });
    expect(total.requestsPerSecond).toBeCloseTo(40 / 5 + 50 / 10, 9);
  });
});
