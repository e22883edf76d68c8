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
  save(entries: ReadonlyMap<string, RememberedHealth>, ttlSeconds: number): Promise<void>;
}

/** How often the whole memory is scanned for entries due a rewrite (their TTL half gone). */
const DUE_SCAN_FRACTION_OF_TTL = 0.1;

export class HealthMemory {
  /** What is remembered, by task id, as the routing table reads it (never copied). */
  private readonly health = new Map<string, RememberedHealth>();
  /**
   * When each entry was last written to the store; absent when it is not
   * (yet). Two maps rather than an object per entry: 100,000 tasks' worth
   * is held for as long as they run.
   */
  private readonly savedAt = new Map<string, number>();
  /** Written since the last store write, or failed to write. */
  private readonly unsaved = new Set<string>();
  private lastDueScan = 0;
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
    const missing = [...taskIds].filter((id) => !this.health.has(id) && !this.asked.has(id));
    if (missing.length > 0 && this.store) {
      try {
        const loaded = await this.store.load(missing);
        for (const id of missing) this.asked.add(id);
        for (const [id, health] of loaded) this.setLocal(id, health, this.now());
        this.markHealthy();
      } catch (err) {
        this.markDegraded(err);
      }
    }
    return this.view();
  }

  /** How many tasks' health is remembered. */
  get size(): number {
    return this.health.size;
  }

  view(): ReadonlyMap<string, RememberedHealth> {
    return this.health;
  }

  private setLocal(id: string, health: RememberedHealth, savedAt: number | null): void {
    this.health.set(id, health);
    // Without a store nothing is ever saved: tracking what is unsaved would cost every sync a pass over every task.
    if (savedAt === null) {
      if (this.store) this.unsaved.add(id);
      this.savedAt.delete(id);
    } else {
      this.unsaved.delete(id);
      this.savedAt.set(id, savedAt);
    }
  }

  /**
   * Records what Marathon reported, at once, and writes changed (or
   * half-expired) entries to the store; resolves once they are written (or
   * the store failed). Writes go one at a time: what changes during one goes
   * in the next, so a sync that does not wait for its write (the reconciler's,
   * after its push) never has two writes of the same entries under way.
   */
  remember(observations: Iterable<readonly [string, RememberedHealth]>): Promise<void> {
    for (const [id, health] of observations) {
      const known = this.health.get(id);
      if (known && sameHealth(known, health)) continue;
      this.setLocal(id, health, null);
    }
    if (!this.store) return Promise.resolve();
    this.writing = this.writing.then(() => this.writeDue());
    return this.writing;
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
    const now = this.now();
    const due = new Map<string, RememberedHealth>();
    for (const id of this.unsaved) {
      const health = this.health.get(id);
      if (health) due.set(id, health);
    }
    // Entries whose TTL is half gone are rewritten; looking for them costs a
    // pass over the whole memory, so it happens only now and then.
    const ttlMs = this.ttlSeconds * 1000;
    if (now - this.lastDueScan >= ttlMs * DUE_SCAN_FRACTION_OF_TTL) {
      this.lastDueScan = now;
      for (const [id, at] of this.savedAt) if (now - at > ttlMs / 2) due.set(id, this.health.get(id) as RememberedHealth);
    }
    if (due.size === 0) return;
    try {
      await store.save(due, this.ttlSeconds);
      for (const [id, health] of due) {
        // Changed again (or forgotten) while it was written: still unsaved (or gone).
        if (this.health.get(id) !== health) continue;
        this.savedAt.set(id, now);
        this.unsaved.delete(id);
      }
      this.markHealthy();
    } catch (err) {
      this.markDegraded(err);
    }
  }

  /** Called when the store (re)connects: writes whatever it missed while it was away. */
  async flush(): Promise<void> {
    await this.remember(new Map());
    // With nothing to write, the reconnect itself shows the store is back.
    if (this.unsaved.size === 0) this.markHealthy();
  }

  /**
   * Drops local entries of tasks that no longer exist (the store's TTL does
   * the same there). `liveTaskIds` is asked for only when something is
   * remembered: at 100,000 tasks the set costs about 45 ms to build.
   */
  forgetExcept(liveTaskIds: ReadonlySet<string> | (() => ReadonlySet<string>)): void {
    if (this.health.size === 0 && this.asked.size === 0) return;
    if (typeof liveTaskIds === 'function') liveTaskIds = liveTaskIds();
    for (const id of this.health.keys()) {
      if (liveTaskIds.has(id)) continue;
      this.health.delete(id);
      this.savedAt.delete(id);
      this.unsaved.delete(id);
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
