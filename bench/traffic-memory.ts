/**
 * Memory of the agent's traffic history at scale: 10,000 apps (1,000 of them
 * with a second version, so 11,000 app versions), every one serving requests
 * all the time (the worst case: a version gets its ring at its first request
 * and loses it after half an hour without one). The nginx adapter's reading
 * (two workers' counters, as /metrics?format=json gives them), the sampler and
 * the history run in this process on a fake clock: one reading every 5 s for
 * half an hour fills every ring, then another half hour shows whether it grows.
 * Heap (with typed arrays) after a forced GC, before and after; the time of one
 * reading at that size too (the agent's CPU every 5 s).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { PluginTraffic, type PluginCountersBody } from '../agent/dataplane/nginx/plugin-traffic.js';
import { TRAFFIC_SAMPLER_DEFAULTS, TrafficSampler } from '../agent/observe/traffic-sampler.js';
import { atMost, median, round, type BenchContext, type Benchmark, type BenchOutcome } from './lib/benchmark.js';

/** The plugin's bounds (lua/edgeroute/metrics.lua). */
const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const WIDTH = 5 + BOUNDS.length + 1 + 2;
const WORKERS = 2;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Every version's counters in every worker, going up by a few requests each reading. */
function counterSource(apps: number, twoVersions: number): { next(): PluginCountersBody } {
  const keys: string[] = [];
  for (let i = 0; i < apps; i++) {
    keys.push(`/app-${i}\0stable`);
    if (i < twoVersions) keys.push(`/app-${i}\0grey`);
  }
  const totals = Array.from({ length: WORKERS }, () => keys.map(() => new Array<number>(WIDTH).fill(0)));
  let tick = 0;
  return {
    next() {
      tick++;
      const workers = totals.map((series) => {
        const flush: Record<string, number[]> = {};
        series.forEach((c, i) => {
          const requests = 3 + ((i + tick) % 5);
          c[1]! += requests - 1; // 2xx
          c[4]! += 1; // 5xx
          c[5 + ((i + tick) % 4)]! += requests; // buckets
          c[5 + BOUNDS.length + 1]! += requests * 0.004; // latency seconds
          flush[keys[i]!] = [...c];
        });
        return flush;
      });
      return { generation: 'g1', bounds: BOUNDS, workers };
    },
  };
}

export const trafficMemory: Benchmark = {
  name: 'traffic-memory',
  description: "The agent's traffic history for 10,000 apps (11,000 versions), all serving: heap after half an hour of readings, and after another",
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const apps = ctx.smoke ? 200 : 10_000;
    const twoVersions = apps / 10;
    const series = apps + twoVersions;
    const opts = TRAFFIC_SAMPLER_DEFAULTS;
    const readingsPerWindow = (opts.slotMs * opts.slots) / opts.intervalMs;
    const source = counterSource(apps, twoVersions);
    const adapter = new PluginTraffic();
    let now = Date.UTC(2026, 10, 29, 12, 0, 0);
    const sampler = new TrafficSampler({ readTraffic: async () => adapter.read(source.next()) }, pino({ level: 'silent' }), opts, () => now);

    const before = heapBytes();
    const times: number[] = [];
    const readWindow = async () => {
      for (let i = 0; i < readingsPerWindow; i++) {
        now += opts.intervalMs;
        const started = performance.now();
        await sampler.sample();
        times.push(performance.now() - started);
        if (i % 60 === 0) ctx.progress(`reading ${i}/${readingsPerWindow}`);
      }
    };
    await readWindow();
    const afterOne = heapBytes();
    await readWindow();
    const afterTwo = heapBytes();
    const size = sampler.history?.size ?? { series: 0, rings: 0 };
    const perSeries = (afterOne - before) / series;
    const growth = (afterTwo - before) / (afterOne - before);
    const readingMs = median(times.slice(readingsPerWindow));
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
    return {
      summary: `${apps} apps (${series} versions, ${size.rings} rings of ${opts.slots} slots): ${mb(afterOne - before)} MB after 30 min, ${mb(afterTwo - before)} MB after 60 (x${round(growth, 3)}), ${round(perSeries / 1024, 2)} KB per version; one reading ${round(readingMs, 1)} ms`,
      targets: [atMost('growth over a second window', round(growth, 3), 1.05)],
      results: {
        apps,
        versions: series,
        rings: size.rings,
        slots: opts.slots,
        slotSeconds: opts.slotMs / 1000,
        readingSeconds: opts.intervalMs / 1000,
        readingsPerWindow,
        mbAfterOneWindow: mb(afterOne - before),
        mbAfterTwoWindows: mb(afterTwo - before),
        growth: round(growth, 3),
        bytesPerVersion: Math.round(perSeries),
        ringBytesPerVersion: opts.slots * 16,
        readingMedianMs: round(readingMs, 2),
        readingP90Ms: round([...times.slice(readingsPerWindow)].sort((x, y) => x - y)[Math.floor(0.9 * readingsPerWindow)] ?? NaN, 2),
      },
    };
  },
};
