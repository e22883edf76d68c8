/**
 * Bytes a node writes to Redis for the fleet's traffic numbers, every
 * reading (5 s), at 10,000 apps, side by side in one run against one real
 * redis-server (its `total_net_input_bytes`: commands and protocol):
 *
 * - before: the whole live window of every app that served requests in it,
 *   replaced at each reading (DEL + HSET of every such app, as the agent did
 *   until issue 18's follow-up);
 * - now: agent/fleet/traffic-publisher.ts (the node's clock, the apps that
 *   served requests since the last reading, deletions of apps that left the
 *   window).
 *
 * Three clusters, each a history of 10,000 one-version apps fed on a fake
 * clock (a reading every 5 s, 15 s slots): 100 apps serving at every reading
 * and the others idle (they all served once, then went quiet); the same with
 * every idle app getting one request a minute (an uptime monitor); all 10,000
 * serving. Measured over 2 minutes after a minute of warm-up.
 */
import { Redis } from 'ioredis';
import { TrafficBoard } from '../agent/fleet/traffic-board.js';
import { TrafficPublisher } from '../agent/fleet/traffic-publisher.js';
import { TRAFFIC_HISTORY_DEFAULTS, TrafficHistory, type TrafficDelta } from '../agent/observe/traffic-history.js';
import { startRedis } from '../agent/sandbox/redis-server.js';
import { round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';

/** The nginx plugin's bounds (lua/edgeroute/metrics.lua). */
const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const INTERVAL_MS = 5_000;
const TTL_MS = 15_000;

type Cluster = 'idle' | 'monitored' | 'busy';

function deltas(apps: number, active: number, cluster: Cluster, reading: number): TrafficDelta[] {
  const out: TrafficDelta[] = [];
  for (let i = 0; i < apps; i++) {
    const serving = i < active || cluster === 'busy' || reading === 0 || (cluster === 'monitored' && (i + reading) % 12 === 0);
    if (!serving) continue;
    const requests = i < active || cluster === 'busy' ? 20 + ((i + reading) % 30) : 1;
    const buckets = new Array<number>(BOUNDS.length + 1).fill(0);
    buckets[(i + reading) % 5] = requests;
    out.push({ app: `/app-${String(i).padStart(5, '0')}`, version: 'stable', requests, errors: i % 17 === 0 ? 1 : 0, buckets, latencySeconds: requests * 0.0031, recentMeanSeconds: null });
  }
  return out;
}

async function inputBytes(redis: Redis): Promise<number> {
  return Number(/total_net_input_bytes:(\d+)/.exec(await redis.info('stats'))?.[1] ?? NaN);
}

/** The publication before: every app in the live window, its windows as JSON, the hash replaced. */
async function publishWhole(redis: Redis, key: string, node: string, history: TrafficHistory): Promise<void> {
  const at = Date.now();
  const fields: string[] = [];
  for (const [app, versions] of history.windows()) fields.push(app, JSON.stringify({ app, node, at, defaultVersion: 'stable', bounds: history.latencyBounds, versions: Object.fromEntries(versions) }));
  const tx = redis.multi().del(key);
  if (fields.length > 0) tx.hset(key, ...fields).pexpire(key, TTL_MS);
  await tx.exec();
}

export const trafficPublication: Benchmark = {
  name: 'traffic-publication',
  description: 'Bytes a node writes to Redis per traffic reading (5 s) at 10,000 apps: the whole live window (before) vs the apps that served requests (now)',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const apps = ctx.smoke ? 500 : 10_000;
    const active = ctx.smoke ? 5 : 100;
    const warmup = ctx.smoke ? 3 : 12;
    const measured = ctx.smoke ? 6 : 24;
    const server = await startRedis();
    const redis = new Redis(server.url);
    const results: Record<string, Record<string, number>> = {};
    try {
      for (const cluster of ['idle', 'monitored', 'busy'] as const) {
        const opts = { ...TRAFFIC_HISTORY_DEFAULTS, maxSeries: apps + 1 };
        const histories = { before: new TrafficHistory(BOUNDS, opts), now: new TrafficHistory(BOUNDS, opts) };
        let clock = Date.UTC(2026, 10, 30, 0, 0, 0);
        const publisher = new TrafficPublisher(new TrafficBoard(redis, 'bench:'), `now-${cluster}`, TTL_MS, () => clock);
        const bytes = { before: 0, now: 0 };
        const written = { before: 0, now: 0 };
        for (let reading = 0; reading < warmup + measured; reading++) {
          clock += INTERVAL_MS;
          const batch = deltas(apps, active, cluster, reading);
          // Alternated: which goes first changes at every reading.
          const order = reading % 2 === 0 ? (['before', 'now'] as const) : (['now', 'before'] as const);
          for (const which of order) {
            histories[which].record(clock, INTERVAL_MS, batch);
            const start = await inputBytes(redis);
            if (which === 'before') await publishWhole(redis, `bench:traffic:before-${cluster}`, `before-${cluster}`, histories.before);
            else await publisher.publish(histories.now, () => 'stable');
            const spent = (await inputBytes(redis)) - start;
            if (reading >= warmup) {
              bytes[which] += spent;
              written[which] += which === 'before' ? histories.before.windows().size : 0;
            }
          }
        }
        const perReading = (n: number) => Math.round(n / measured);
        results[cluster] = { beforeBytesPerReading: perReading(bytes.before), nowBytesPerReading: perReading(bytes.now), appsInWindowBefore: perReading(written.before), ratio: round(bytes.now / bytes.before, 4) };
        ctx.progress(`${cluster}: ${JSON.stringify(results[cluster])}`);
      }
    } finally {
      redis.disconnect();
      await server.stop();
    }
    const kb = (n: number) => round(n / 1024, 1);
    const line = (c: Cluster) => `${c} ${kb(results[c]!.beforeBytesPerReading!)} → ${kb(results[c]!.nowBytesPerReading!)} KB`;
    return {
      summary: `${apps} apps, ${active} serving, bytes to Redis per 5 s reading, before → now: ${(['idle', 'monitored', 'busy'] as const).map(line).join('; ')}`,
      targets: [],
      results: { apps, active, readings: measured, ...results },
    };
  },
};
