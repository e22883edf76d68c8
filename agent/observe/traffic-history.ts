/**
 * The last half hour of traffic per app version, in memory and bounded: a
 * ring of fixed slots (15 s each by default) per version that served
 * requests, four Float32 per slot (requests, 5xx, and p50/p99 from the
 * histogram, or the mean latency where the data plane keeps none). A version
 * gets its ring at its first request and loses it after a whole window
 * without one; at most `maxSeries` rings exist (a version beyond that has
 * its live numbers but no history). The sampler adds each reading's
 * differences; the current slot is rewritten at every reading, so the plots
 * move every few seconds.
 *
 * Memory per version with traffic: slots × 16 bytes (1,920 B for 120) for
 * the ring, plus two slot accumulators (the live numbers cover the current
 * slot and the one before it) of (4 + buckets) doubles each.
 */
import { appTraffic, quantile, type AppTraffic, type TrafficWindow } from '../core/traffic.js';

export interface TrafficHistoryOptions {
  /** Width of one slot, ms. */
  readonly slotMs: number;
  /** Slots kept: the window is slots × slotMs. */
  readonly slots: number;
  /** Rings kept at most. */
  readonly maxSeries: number;
}

export const TRAFFIC_HISTORY_DEFAULTS: TrafficHistoryOptions = { slotMs: 15_000, slots: 120, maxSeries: 20_000 };

/** The differences of one app version since the previous reading. */
export interface TrafficDelta {
  readonly app: string;
  readonly version: string;
  readonly requests: number;
  readonly errors: number;
  /** Per bucket of the history's bounds (and one above); null without a histogram. */
  readonly buckets: readonly number[] | null;
  /** Time spent on these requests, seconds (for a mean); null when unknown. */
  readonly latencySeconds: number | null;
  /** The data plane's own recent mean (HAProxy), used when latencySeconds is null. */
  readonly recentMeanSeconds: number | null;
}

/** A version's counts in one slot, as the fleet publication carries them (agent/fleet/traffic-publisher.ts). */
export interface SlotCounts {
  /** The slot's absolute index (epoch ms / slotMs). */
  readonly slot: number;
  /** The accumulator: requests, errors, latency seconds, requests with a latency, then the buckets. */
  readonly counts: readonly number[];
}

/** The history's clock, for the fleet publication: its slot now and the seconds read in it and in the one before. */
export interface LiveClock {
  readonly slot: number;
  readonly slotMs: number;
  /** Seconds of readings in `slot` and in `slot - 1`. */
  readonly covered: readonly [number, number];
}

/**
 * The live window (slots `slot` and `slot - 1`) from a version's slot
 * counts; null when neither holds any. One computation for the history and
 * for a node's publication read back from Redis.
 */
export function liveWindow(clock: LiveClock, parts: readonly SlotCounts[], withBuckets: boolean): TrafficWindow | null {
  const live = parts.filter((p) => p.slot === clock.slot || p.slot === clock.slot - 1);
  if (live.length === 0) return null;
  const width = Math.max(...live.map((p) => p.counts.length));
  const sum = new Float64Array(width);
  for (const p of live) for (let i = 0; i < p.counts.length; i++) sum[i]! += p.counts[i]!;
  const seconds = clock.covered[0] + clock.covered[1];
  return {
    requests: sum[A_REQUESTS]!,
    errors: sum[A_ERRORS]!,
    requestsPerSecond: seconds > 0 ? sum[A_REQUESTS]! / seconds : 0,
    buckets: withBuckets ? Array.from(sum.subarray(A_BUCKETS)) : null,
    meanSeconds: sum[A_TIMED]! > 0 ? sum[A_LATENCY]! / sum[A_TIMED]! : null,
  };
}

/** Accumulator layout: requests, errors, latency seconds, requests with a latency, then the buckets. */
const A_REQUESTS = 0;
const A_ERRORS = 1;
const A_LATENCY = 2;
const A_TIMED = 3;
const A_BUCKETS = 4;
/** Ring layout per slot. */
const FIELDS = 4;
const R_REQUESTS = 0;
const R_ERRORS = 1;
const R_FAST = 2;
const R_SLOW = 3;

interface Series {
  readonly app: string;
  readonly version: string;
  /** slots × FIELDS; null when the history is full. */
  readonly ring: Float32Array | null;
  /** The last slot (absolute index) written. */
  lastSlot: number;
  current: Float64Array;
  currentSlot: number;
  previous: Float64Array;
  previousSlot: number;
}

/** A version's plot data: one value per slot of `times` (null: no request then). */
export interface VersionHistory {
  readonly version: string;
  readonly requestsPerSecond: (number | null)[];
  readonly share: (number | null)[];
  readonly errorRatio: (number | null)[];
  /** p50 and p99 (histogram), or the mean latency and nulls (no histogram). */
  readonly p50Ms: (number | null)[];
  readonly p99Ms: (number | null)[];
}

export interface AppHistory {
  /** Each slot's start, seconds since the epoch. */
  readonly times: number[];
  readonly versions: VersionHistory[];
}

export class TrafficHistory {
  private readonly series = new Map<string, Series>();
  /** Seconds of readings per slot position, and which absolute slot each position holds. */
  private readonly covered: Float64Array;
  private readonly coveredSlot: Float64Array;
  private readonly width: number;
  private rings = 0;
  /** Apps with requests since the last takeTouched() (the fleet publication writes only those); null until asked, so an agent without Redis keeps no such set. */
  private touched: Set<string> | null = null;
  /** Versions that got no ring because maxSeries rings exist. */
  overflowed = 0;
  private now = 0;

  constructor(
    /** The histogram's bounds (seconds); null: the data plane keeps none, the history keeps means. */
    readonly latencyBounds: readonly number[] | null,
    readonly opts: TrafficHistoryOptions = TRAFFIC_HISTORY_DEFAULTS,
  ) {
    this.covered = new Float64Array(opts.slots);
    this.coveredSlot = new Float64Array(opts.slots).fill(-1);
    this.width = A_BUCKETS + (latencyBounds ? latencyBounds.length + 1 : 0);
  }

  /** What the history holds: "histogram" (p50/p99) or "mean". */
  get latencyKind(): 'histogram' | 'mean' {
    return this.latencyBounds ? 'histogram' : 'mean';
  }

  /** Adds one reading's differences, taken over `elapsedMs` ending at `now`. */
  record(now: number, elapsedMs: number, deltas: Iterable<TrafficDelta>): void {
    this.now = now;
    const slot = Math.floor(now / this.opts.slotMs);
    const at = slot % this.opts.slots;
    if (this.coveredSlot[at] !== slot) {
      this.coveredSlot[at] = slot;
      this.covered[at] = 0;
      this.forgetIdle(slot);
    }
    this.covered[at]! += elapsedMs / 1000;
    for (const delta of deltas) {
      if (delta.requests <= 0) continue;
      const key = `${delta.app}\0${delta.version}`;
      let series = this.series.get(key);
      if (!series) {
        const ring = this.rings < this.opts.maxSeries ? new Float32Array(this.opts.slots * FIELDS) : null;
        if (ring) this.rings++;
        else this.overflowed++;
        series = { app: delta.app, version: delta.version, ring, lastSlot: slot, current: new Float64Array(this.width), currentSlot: slot, previous: new Float64Array(this.width), previousSlot: -1 };
        this.series.set(key, series);
      }
      this.add(series, slot, delta);
      this.touched?.add(delta.app);
    }
  }

  private add(series: Series, slot: number, delta: TrafficDelta): void {
    if (series.currentSlot !== slot) {
      const swap = series.previous;
      series.previous = series.current;
      series.previousSlot = series.currentSlot;
      series.current = swap.fill(0);
      series.currentSlot = slot;
    }
    const acc = series.current;
    acc[A_REQUESTS]! += delta.requests;
    acc[A_ERRORS]! += delta.errors;
    const latency = delta.latencySeconds ?? (delta.recentMeanSeconds === null ? null : delta.recentMeanSeconds * delta.requests);
    if (latency !== null) {
      acc[A_LATENCY]! += latency;
      acc[A_TIMED]! += delta.requests;
    }
    if (this.latencyBounds && delta.buckets) for (let i = 0; i < this.width - A_BUCKETS; i++) acc[A_BUCKETS + i]! += delta.buckets[i] ?? 0;
    const ring = series.ring;
    if (ring) {
      // Slots skipped since the last write held nothing.
      for (let s = Math.max(series.lastSlot + 1, slot - this.opts.slots + 1); s < slot; s++) ring.fill(0, (s % this.opts.slots) * FIELDS, (s % this.opts.slots) * FIELDS + FIELDS);
      const at = (slot % this.opts.slots) * FIELDS;
      ring[at + R_REQUESTS] = acc[A_REQUESTS]!;
      ring[at + R_ERRORS] = acc[A_ERRORS]!;
      const [fast, slow] = this.latencyOf(acc);
      ring[at + R_FAST] = fast ?? NaN;
      ring[at + R_SLOW] = slow ?? NaN;
    }
    series.lastSlot = slot;
  }

  /** p50 and p99 (seconds) of an accumulator's histogram, or its mean and null. */
  private latencyOf(acc: Float64Array): [number | null, number | null] {
    if (this.latencyBounds) {
      const buckets = acc.subarray(A_BUCKETS);
      return [quantile(this.latencyBounds, buckets, 0.5), quantile(this.latencyBounds, buckets, 0.99)];
    }
    return [acc[A_TIMED]! > 0 ? acc[A_LATENCY]! / acc[A_TIMED]! : null, null];
  }

  /** Versions without a request in the whole window lose their ring. */
  private forgetIdle(slot: number): void {
    for (const [key, series] of this.series) {
      if (series.lastSlot > slot - this.opts.slots) continue;
      this.series.delete(key);
      if (series.ring) this.rings--;
    }
  }

  /** The live window of a version: its current slot and the one before. */
  private windowOf(series: Series): TrafficWindow | null {
    return liveWindow(this.clock(), this.slotsOf(series), this.latencyBounds !== null);
  }

  /** A version's counts in the live window's slots (those it has). */
  private slotsOf(series: Series): SlotCounts[] {
    const slot = Math.floor(this.now / this.opts.slotMs);
    const parts: SlotCounts[] = [];
    for (const [counts, s] of [
      [series.current, series.currentSlot],
      [series.previous, series.previousSlot],
    ] as const) {
      if (s === slot || s === slot - 1) parts.push({ slot: s, counts: Array.from(counts) });
    }
    return parts;
  }

  /** The slot now and the seconds read in it and the one before (the live window's length). */
  clock(): LiveClock {
    const slot = Math.floor(this.now / this.opts.slotMs);
    return { slot, slotMs: this.opts.slotMs, covered: [this.coveredAt(slot), this.coveredAt(slot - 1)] };
  }

  /** The apps that served requests since the last call (the first time: every app the history holds). */
  takeTouched(): Set<string> {
    const touched = this.touched ?? new Set([...this.series.values()].map((s) => s.app));
    this.touched = new Set();
    return touched;
  }

  /** Each app's versions' counts in the live window's slots (apps without any are left out); only `apps` when given. */
  liveSlots(apps?: ReadonlySet<string>): Map<string, Record<string, SlotCounts[]>> {
    const out = new Map<string, Record<string, SlotCounts[]>>();
    for (const series of this.series.values()) {
      if (apps && !apps.has(series.app)) continue;
      const parts = this.slotsOf(series);
      if (parts.length === 0) continue;
      let versions = out.get(series.app);
      if (!versions) out.set(series.app, (versions = {}));
      versions[series.version] = parts;
    }
    return out;
  }

  private coveredAt(slot: number): number {
    const at = ((slot % this.opts.slots) + this.opts.slots) % this.opts.slots;
    return this.coveredSlot[at] === slot ? this.covered[at]! : 0;
  }

  /** The live windows of every app version, by app then version (only those with requests in the window). */
  windows(only?: ReadonlySet<string>): Map<string, Map<string, TrafficWindow>> {
    const apps = new Map<string, Map<string, TrafficWindow>>();
    for (const series of this.series.values()) {
      if (only && !only.has(series.app)) continue;
      const window = this.windowOf(series);
      if (!window) continue;
      let versions = apps.get(series.app);
      if (!versions) apps.set(series.app, (versions = new Map()));
      versions.set(series.version, window);
    }
    return apps;
  }

  /** The apps' versions side by side (numbers of the live window, flags against each default version). */
  summaries(defaults: (app: string) => string | null, only?: ReadonlySet<string>): AppTraffic[] {
    return [...this.windows(only)].map(([app, versions]) => appTraffic(app, defaults(app), versions, this.latencyBounds)).sort((a, b) => (a.app < b.app ? -1 : 1));
  }

  /** One app's plots over the window (from the first slot read); versions of the app without a ring are left out. */
  history(app: string, versions: readonly string[]): AppHistory {
    const slot = Math.floor(this.now / this.opts.slotMs);
    // From the first slot read (an agent started ten minutes ago has ten minutes to show).
    let first = slot - this.opts.slots + 1;
    while (first < slot && this.coveredAt(first) === 0) first++;
    const times: number[] = [];
    for (let s = first; s <= slot; s++) times.push((s * this.opts.slotMs) / 1000);
    const rings = versions.map((version) => ({ version, series: this.series.get(`${app}\0${version}`) })).filter((r) => r.series?.ring);
    const value = (series: Series, s: number, field: number): number => {
      if (s > series.lastSlot || s <= series.lastSlot - this.opts.slots) return 0;
      return series.ring![(s % this.opts.slots) * FIELDS + field]!;
    };
    const totals = times.map((_, i) => rings.reduce((sum, r) => sum + value(r.series!, first + i, R_REQUESTS), 0));
    const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
    return {
      times,
      versions: rings.map(({ version, series }) => {
        const out: VersionHistory = { version, requestsPerSecond: [], share: [], errorRatio: [], p50Ms: [], p99Ms: [] };
        times.forEach((_, i) => {
          const s = first + i;
          const requests = value(series!, s, R_REQUESTS);
          const seconds = this.coveredAt(s);
          const served = requests > 0;
          const fast = value(series!, s, R_FAST);
          const slow = value(series!, s, R_SLOW);
          out.requestsPerSecond.push(seconds > 0 ? round(requests / seconds, 3) : null);
          out.share.push(served && totals[i]! > 0 ? round(requests / totals[i]!, 4) : null);
          out.errorRatio.push(served ? round(value(series!, s, R_ERRORS) / requests, 4) : null);
          out.p50Ms.push(served && Number.isFinite(fast) ? round(fast * 1000, 2) : null);
          out.p99Ms.push(served && Number.isFinite(slow) ? round(slow * 1000, 2) : null);
        });
        return out;
      }),
    };
  }

  /** Versions tracked, and rings among them (for the memory figure). */
  get size(): { series: number; rings: number } {
    return { series: this.series.size, rings: this.rings };
  }
}
