/**
 * Reads the data plane's request counters every few seconds (through its
 * TrafficSource: the nginx plugin's counters, HAProxy's stats) and adds the
 * differences to the traffic history. The first reading only sets the
 * baseline: what was counted before the agent looked is not this window's.
 */
import type { Logger } from 'pino';
import type { TrafficReading, TrafficSource } from '../dataplane/data-plane.js';
import { TRAFFIC_HISTORY_DEFAULTS, TrafficHistory, type TrafficDelta, type TrafficHistoryOptions } from './traffic-history.js';

export interface TrafficSamplerOptions extends TrafficHistoryOptions {
  /** How often the data plane is read, ms. */
  readonly intervalMs: number;
}

export const TRAFFIC_SAMPLER_DEFAULTS: TrafficSamplerOptions = { ...TRAFFIC_HISTORY_DEFAULTS, intervalMs: 5_000 };

export class TrafficSampler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Counters of the previous reading, by "app\0version": responses 1xx-5xx, buckets, latency seconds. */
  private previous = new Map<string, Float64Array>();
  private previousAt: number | null = null;
  private bounds: string | null = null;
  /** Null until the first reading told whether the data plane keeps a histogram. */
  history: TrafficHistory | null = null;
  /** Why the last reading failed; null when it worked. */
  lastError: string | null = null;
  /** When the last reading was added, ms. */
  lastSampleAt: number | null = null;
  private readonly listeners: Array<(history: TrafficHistory) => void> = [];

  constructor(
    private readonly source: TrafficSource,
    private readonly log: Logger,
    readonly opts: TrafficSamplerOptions = TRAFFIC_SAMPLER_DEFAULTS,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.opts.intervalMs);
    this.timer.unref();
    void this.sample();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Called after every reading added (the fleet publication). */
  onSample(listener: (history: TrafficHistory) => void): void {
    this.listeners.push(listener);
  }

  /** One reading now (one at a time: a slow data plane skips ticks rather than piling them up). */
  sample(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.readOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async readOnce(): Promise<void> {
    let reading: TrafficReading;
    try {
      reading = await this.source.readTraffic();
    } catch (err) {
      const message = (err as Error).message;
      if (this.lastError !== message) this.log.warn({ err: message }, `cannot read the data plane's request counters: ${message}`);
      this.lastError = message;
      // The next reading starts a new baseline: the gap is not spread over one slot.
      this.previousAt = null;
      return;
    }
    if (this.lastError !== null) this.log.info("the data plane's request counters can be read again");
    this.lastError = null;
    const now = this.now();
    const bounds = JSON.stringify(reading.latencyBounds);
    if (this.history === null || bounds !== this.bounds) {
      this.history = new TrafficHistory(reading.latencyBounds, this.opts);
      this.bounds = bounds;
      this.previousAt = null;
    }
    const baseline = this.previousAt === null;
    const deltas: TrafficDelta[] = [];
    const next = new Map<string, Float64Array>();
    for (const s of reading.series) {
      const key = `${s.app}\0${s.version}`;
      const values = Float64Array.from([...s.responses, ...(s.latencyBuckets ?? []), s.latencySeconds ?? 0]);
      next.set(key, values);
      if (baseline) continue;
      const before = this.previous.get(key);
      const diff = (i: number) => Math.max(0, values[i]! - (before?.[i] ?? 0));
      let requests = 0;
      for (let i = 0; i < 5; i++) requests += diff(i);
      if (requests === 0) continue;
      const buckets = s.latencyBuckets ? s.latencyBuckets.map((_, i) => diff(5 + i)) : null;
      deltas.push({
        app: s.app,
        version: s.version,
        requests,
        errors: diff(4),
        buckets,
        latencySeconds: s.latencySeconds === null ? null : diff(values.length - 1),
        recentMeanSeconds: s.recentMeanSeconds,
      });
    }
    this.previous = next;
    const elapsed = this.previousAt === null ? 0 : now - this.previousAt;
    this.previousAt = now;
    if (baseline) return;
    this.history.record(now, elapsed, deltas);
    this.lastSampleAt = now;
    for (const listener of this.listeners) listener(this.history);
  }
}
