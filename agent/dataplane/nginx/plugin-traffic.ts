/**
 * The plugin's request counters as the traffic sampler reads them. The admin
 * listener's `/metrics?format=json` gives each nginx worker's last flush as
 * the worker stored it: per "app\0version", responses by status class
 * (1xx-5xx), a latency histogram (a count per bound, then one above the
 * last), the latency sum and the upstream failures (metrics.lua's layout).
 * A worker's counts start again from zero when it is replaced; the readings
 * are per worker, so one restarted worker costs no other's counts.
 */
import type { TrafficCounters, TrafficReading } from '../data-plane.js';
import { MonotonicCounters } from '../monotonic-counters.js';

export interface PluginCountersBody {
  readonly generation?: unknown;
  readonly bounds?: unknown;
  readonly workers?: unknown;
}

export class PluginTraffic {
  private counters: MonotonicCounters | null = null;
  private width = 0;

  /** One answer of /metrics?format=json → the counters of every app version, only ever going up. */
  read(body: PluginCountersBody): TrafficReading {
    const bounds = Array.isArray(body.bounds) && body.bounds.every((b) => typeof b === 'number') ? (body.bounds as number[]) : null;
    if (bounds === null || !Array.isArray(body.workers)) throw new Error('the plugin answered /metrics?format=json without bounds and workers');
    // 1xx-5xx, the buckets and the one above, the latency sum, the failures.
    const width = 5 + bounds.length + 1 + 2;
    if (this.counters === null || width !== this.width) {
      this.counters = new MonotonicCounters(width);
      this.width = width;
    }
    const readings: Array<{ source: string; owner: string; values: readonly number[] }> = [];
    body.workers.forEach((flush, worker) => {
      if (typeof flush !== 'object' || flush === null) return;
      for (const [key, values] of Object.entries(flush as Record<string, unknown>)) {
        if (Array.isArray(values) && values.length === width) readings.push({ source: `${worker}\n${key}`, owner: key, values: values as number[] });
      }
    });
    const totals = this.counters.add(typeof body.generation === 'string' ? body.generation : null, readings);
    const series: TrafficCounters[] = [];
    for (const [key, values] of totals) {
      const cut = key.indexOf('\0');
      if (cut < 0) continue;
      series.push({
        app: key.slice(0, cut),
        version: key.slice(cut + 1),
        responses: values.slice(0, 5),
        latencyBuckets: values.slice(5, 5 + bounds.length + 1),
        latencySeconds: values[5 + bounds.length + 1] ?? 0,
        recentMeanSeconds: null,
      });
    }
    return { latencyBounds: bounds, series };
  }
}
