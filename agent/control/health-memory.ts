/**
 * The agents' memory of task health. Kept locally and mirrored to Redis with
 * a TTL, so a restarted agent (or another routing node) can recall that a
 * task was healthy when Marathon, after a leader failover, reports nothing.
 * When Redis is away, the local memory carries on alone and Redis is caught
 * up when it returns.
 */
import type { Logger } from 'pino';
import type { RememberedHealth } from '../core/lifecycle.js';

/** The persistent side (Redis). Both calls throw when the store is unreachable. */
export interface HealthStore {
  load(taskIds: readonly string[]): Promise<Map<string, RememberedHealth>>;
  save(entries: Iterable<Observation>, ttlSeconds: number): Promise<void>;
}

/** A task id and its health, as the routing table reports observations. */
export type Observation = readonly [string, RememberedHealth];

/** Entries written to the store together, and when. */
interface Written {
  readonly at: number;
  readonly entries: readonly Observation[];
}

/** Observations merged per turn of the event loop when a batch is large (a few ms). */
const MERGE_SLICE = 5_000;

/** How often the whole memory is scanned for entries due a rewrite (their TTL half gone). */
const DUE_SCAN_FRACTION_OF_TTL = 0.1;

export class HealthMemory {
  /** What is remembered, by task id, as the routing table reads it (never copied). */
  private readonly health = new Map<string, RememberedHealth>();
  /**
   * Entries to write, in the order they changed. An entry is current while
   * the memory still holds its very health object: one replaced or forgotten
   * since is skipped when it comes up. A list, not a set or a map of write
   * times, because a first sync brings 100,000 entries and every keyed
   * operation on them hashes a task id: the keyed version spent 0.3 s of
   * CPU per first sync on bookkeeping.
   */
  private unsaved: Observation[] = [];
  /** What was written, oldest first: rewritten once half its TTL is gone, if still current. */
  private writes: Written[] = [];
  /** Entries in `writes`, current or not: replaced ones are dropped when they outnumber the memory. */
  private writtenEntries = 0;
  private lastDueScan = 0;
  /**
   * Large batches of observations not yet merged into `health`, oldest first,
   * and how far into the first one the merge has come. A first sync brings
   * 100,000 at once; merging them took 0.1 s after its push, which the sync
   * does not need to wait for: they are merged a slice per turn of the event
   * loop, and whatever reads the memory first merges the rest at once.
   */
  private readonly toMerge: Array<readonly Observation[]> = [];
  private mergedOfFirst = 0;
  private merging: Promise<void> | null = null;
  /** Task ids already asked of the store, so a miss is not asked again and again. */
  private readonly asked = new Set<string>();
  private degraded = false;
  /** The store write under way, if any (writes are one at a time). */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: HealthStore | null,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** What is remembered of these tasks, asking the store for any not known locally. */
  async recall(taskIds: Iterable<string>): Promise<ReadonlyMap<string, RememberedHealth>> {
    this.mergeAll();
    const missing = [...taskIds].filter((id) => !this.health.has(id) && !this.asked.has(id));
    if (missing.length > 0 && this.store) {
      try {
        const loaded = await this.store.load(missing);
        for (const id of missing) this.asked.add(id);
        // What the store holds counts as written now (its TTL is not known here).
        const entries: Observation[] = [];
        for (const [id, health] of loaded) {
          this.health.set(id, health);
          entries.push([id, health]);
        }
        if (entries.length > 0) this.recordWrite(this.now(), entries);
        this.markHealthy();
      } catch (err) {
        this.markDegraded(err);
      }
    }
    return this.view();
  }

  /** How many tasks' health is remembered. */
  get size(): number {
    this.mergeAll();
    return this.health.size;
  }

  view(): ReadonlyMap<string, RememberedHealth> {
    this.mergeAll();
    return this.health;
  }

  private isCurrent([id, health]: Observation): boolean {
    return this.health.get(id) === health;
  }

  /**
   * Records what Marathon reported (a large batch a slice per turn of the
   * event loop; whatever reads the memory meanwhile sees all of it) and
   * writes changed (or half-expired) entries to the store; resolves once
   * they are written (or the store failed). Writes go one at a time: what
   * changes during one goes in the next, so a sync that does not wait for
   * its write (the reconciler's, after its push) never has two writes of the
   * same entries under way.
   */
  remember(observations: Iterable<Observation>): Promise<void> {
    const batch = Array.isArray(observations) ? (observations as readonly Observation[]) : [...observations];
    if (batch.length < MERGE_SLICE && this.toMerge.length === 0) this.merge(batch, 0, batch.length);
    else {
      this.toMerge.push(batch);
      this.merging ??= this.mergeInSlices();
    }
    if (!this.store) return Promise.resolve();
    this.writing = this.writing.then(() => this.merging ?? undefined).then(() => this.writeDue());
    return this.writing;
  }

  private merge(batch: readonly Observation[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const [id, observed] = batch[i] as Observation;
      const known = this.health.get(id);
      if (known && sameHealth(known, observed)) continue;
      // A copy: an entry is told apart from its earlier states by identity, and a
      // task flapping between two shared objects would bring old entries back to life.
      const health: RememberedHealth = { healthy: observed.healthy, since: observed.since };
      this.health.set(id, health);
      // Without a store nothing is ever written: the list would only grow.
      if (this.store) this.unsaved.push([id, health]);
    }
  }

  /** Merges up to `limit` pending observations; false when none are left. */
  private mergeSome(limit: number): boolean {
    while (limit > 0) {
      const batch = this.toMerge[0];
      if (!batch) return false;
      const to = Math.min(batch.length, this.mergedOfFirst + limit);
      this.merge(batch, this.mergedOfFirst, to);
      limit -= to - this.mergedOfFirst;
      if (to < batch.length) this.mergedOfFirst = to;
      else {
        this.toMerge.shift();
        this.mergedOfFirst = 0;
      }
    }
    return this.toMerge.length > 0;
  }

  private mergeAll(): void {
    if (this.toMerge.length > 0) this.mergeSome(Infinity);
  }

  private async mergeInSlices(): Promise<void> {
    while (this.mergeSome(MERGE_SLICE)) await new Promise<void>((resolve) => setImmediate(resolve));
    this.merging = null;
  }

  /** Resolves when the write under way ends, or after `timeoutMs` (a store that does not answer). */
  async written(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.writing, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Never rejects: a failed write leaves its entries unsaved, for the next one. */
  private async writeDue(): Promise<void> {
    const store = this.store;
    if (!store) return;
    this.mergeAll();
    const now = this.now();
    // Entries whose TTL is half gone are written again. Looking for them is
    // cheap (the oldest writes come first) but happens only now and then, so
    // they go out in a few large writes rather than a trickle.
    const ttlMs = this.ttlSeconds * 1000;
    if (now - this.lastDueScan >= ttlMs * DUE_SCAN_FRACTION_OF_TTL) {
      this.lastDueScan = now;
      let expiring = 0;
      while (expiring < this.writes.length && now - (this.writes[expiring] as Written).at > ttlMs / 2) expiring++;
      if (expiring > 0) {
        for (const write of this.writes.splice(0, expiring)) {
          this.writtenEntries -= write.entries.length;
          for (const entry of write.entries) this.unsaved.push(entry);
        }
      }
    }
    if (this.unsaved.length === 0) return;
    const due = this.unsaved.filter((entry) => this.isCurrent(entry));
    this.unsaved = [];
    if (due.length === 0) return;
    try {
      await store.save(due, this.ttlSeconds);
      this.recordWrite(now, due);
      this.markHealthy();
    } catch (err) {
      // Before what changed during the write, so the order of changes holds.
      this.unsaved = due.concat(this.unsaved);
      this.markDegraded(err);
    }
  }

  private recordWrite(at: number, entries: readonly Observation[]): void {
    this.writes.push({ at, entries });
    this.writtenEntries += entries.length;
    // A task whose health flaps would otherwise leave an entry per change here until its TTL is half gone.
    if (this.writtenEntries <= 2 * this.health.size + 1024) return;
    const kept: Written[] = [];
    this.writtenEntries = 0;
    for (const write of this.writes) {
      const current = write.entries.filter((entry) => this.isCurrent(entry));
      if (current.length === 0) continue;
      kept.push({ at: write.at, entries: current });
      this.writtenEntries += current.length;
    }
    this.writes = kept;
  }

  /** Called when the store (re)connects: writes whatever it missed while it was away. */
  async flush(): Promise<void> {
    await this.remember([]);
    // With nothing to write, the reconnect itself shows the store is back.
    if (this.unsaved.length === 0) this.markHealthy();
  }

  /**
   * Drops local entries of tasks that no longer exist (the store's TTL does
   * the same there); their places in the write lists are skipped when they
   * come up. `liveTaskIds` is asked for only when something is remembered:
   * at 100,000 tasks the set costs about 45 ms to build.
   */
  forgetExcept(liveTaskIds: ReadonlySet<string> | (() => ReadonlySet<string>)): void {
    this.mergeAll();
    if (this.health.size === 0 && this.asked.size === 0) return;
    if (typeof liveTaskIds === 'function') liveTaskIds = liveTaskIds();
    for (const id of this.health.keys()) {
      if (!liveTaskIds.has(id)) this.health.delete(id);
    }
    for (const id of this.asked) if (!liveTaskIds.has(id)) this.asked.delete(id);
  }

  get isDegraded(): boolean {
    return this.degraded;
  }

  private markDegraded(err: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.log.warn({ err: (err as Error).message }, "redis unreachable; health memory falls back to this agent's own memory");
  }

  private markHealthy(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.log.info('redis reachable again; health memory is shared again');
  }
}

function sameHealth(a: RememberedHealth, b: RememberedHealth): boolean {
  return a.healthy === b.healthy && a.since === b.since;
}
