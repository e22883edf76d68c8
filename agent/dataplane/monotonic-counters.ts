/**
 * HAProxy's counters as Prometheus counters: they only ever go up while the
 * agent runs, although HAProxy's own restart from zero when HAProxy reloads
 * or restarts, when a server is deleted and added again, and although a pool
 * backend passes from a removed app to a new one with the old app's totals.
 *
 * Each reading of a source (a backend or a server) is compared with the
 * previous one and the difference is credited to the source's owner (the
 * labels: app, version, ...):
 * - first sight: all of it (HAProxy counted it since it started);
 * - HAProxy restarted (its generation changed), or a value went down (the
 *   server was added again): the value itself, counted since then;
 * - the source has another owner than at the previous reading: nothing, as
 *   the interval mixes two apps; a source without an owner then (a pool
 *   backend nobody held, which gets no traffic) gives the new owner what it
 *   counted since.
 * An owner no reading names any more (its app left) is forgotten: its series
 * disappear, and start again from zero if it comes back.
 */

export interface CounterReading {
  /** What the values are read from: a backend, or backend/server. */
  readonly source: string;
  /** Who they are credited to (a key of the labels); null: nobody (a pool backend no app holds). */
  readonly owner: string | null;
  readonly values: readonly number[];
}

export class MonotonicCounters {
  private previous = new Map<string, { owner: string | null; values: readonly number[] }>();
  private totals = new Map<string, number[]>();
  private generation: string | null | undefined = undefined;

  /** `width` values per reading, in a fixed order. */
  constructor(private readonly width: number) {}

  /** Takes one reading of every source (those missing are gone) and returns the totals by owner. */
  add(generation: string | null, readings: readonly CounterReading[]): ReadonlyMap<string, readonly number[]> {
    const restarted = this.generation !== undefined && generation !== this.generation;
    this.generation = generation;
    const next = new Map<string, { owner: string | null; values: readonly number[] }>();
    const owners = new Set<string>();
    for (const reading of readings) {
      const before = this.previous.get(reading.source);
      next.set(reading.source, { owner: reading.owner, values: reading.values });
      if (reading.owner === null) continue;
      owners.add(reading.owner);
      let total = this.totals.get(reading.owner);
      if (!total) {
        total = new Array<number>(this.width).fill(0);
        this.totals.set(reading.owner, total);
      }
      if (before !== undefined && before.owner !== null && before.owner !== reading.owner && !restarted) continue;
      const fresh = before === undefined || restarted;
      for (let i = 0; i < this.width; i++) {
        const now = finite(reading.values[i]);
        const then = fresh ? 0 : finite(before.values[i]);
        total[i]! += now >= then ? now - then : now;
      }
    }
    this.previous = next;
    for (const owner of this.totals.keys()) if (!owners.has(owner)) this.totals.delete(owner);
    return this.totals;
  }
}

function finite(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : 0;
}
