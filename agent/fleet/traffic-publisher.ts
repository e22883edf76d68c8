/**
 * What a node writes to Redis after each traffic reading (traffic-board.ts):
 * its clock, and only the apps that served requests since the last
 * publication (their counts changed) or whose default version changed; the
 * apps whose slots all left the live window are deleted. An idle app costs
 * nothing; a whole table is written at the first publication, after a
 * failed one, and when the hash was found missing (Redis restarted or failed
 * over without it), so a reader never adds up a partial node.
 */
import type { TrafficHistory } from '../observe/traffic-history.js';
import { encodeAppSlots, type TrafficBoard } from './traffic-board.js';

export interface PublicationStats {
  readonly full: boolean;
  /** Apps written. */
  readonly apps: number;
  readonly removed: number;
}

export class TrafficPublisher {
  /** App → [the last slot it had counts in when written, its default version then]. */
  private readonly written = new Map<string, { slot: number; defaultVersion: string | null }>();
  /** Apps that served requests since the last publication that succeeded. */
  private readonly pending = new Set<string>();
  private full = true;
  /** The history published last: another one (new bounds) means a whole table. */
  private history: TrafficHistory | null = null;

  constructor(
    private readonly board: TrafficBoard,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async publish(history: TrafficHistory, defaultOf: (app: string) => string | null): Promise<PublicationStats> {
    if (history !== this.history) {
      this.history = history;
      this.full = true;
    }
    for (const app of history.takeTouched()) this.pending.add(app);
    const stats = await this.write(history, defaultOf, this.full);
    if (stats === 'hash missing') return (await this.write(history, defaultOf, true)) as PublicationStats;
    return stats;
  }

  private async write(history: TrafficHistory, defaultOf: (app: string) => string | null, full: boolean): Promise<PublicationStats | 'hash missing'> {
    const clock = history.clock();
    const live = full ? history.liveSlots() : null;
    const wanted = new Set<string>(full ? live!.keys() : this.pending);
    const removed: string[] = [];
    if (!full) {
      for (const [app, was] of this.written) {
        if (wanted.has(app)) continue;
        if (was.slot < clock.slot - 1) removed.push(app);
        else if (was.defaultVersion !== defaultOf(app)) wanted.add(app);
      }
    }
    const slots = live ?? history.liveSlots(wanted);
    const apps = new Map<string, string>();
    const written: Array<[string, { slot: number; defaultVersion: string | null }]> = [];
    for (const [app, versions] of slots) {
      const defaultVersion = defaultOf(app);
      apps.set(app, encodeAppSlots(defaultVersion, versions));
      written.push([app, { slot: Math.max(...Object.values(versions).flatMap((parts) => parts.map((p) => p.slot))), defaultVersion }]);
    }
    // A pending app may have left the window meanwhile (no slots): it goes too.
    for (const app of wanted) if (!slots.has(app) && this.written.has(app)) removed.push(app);
    try {
      const { hashWasMissing } = await this.board.write(this.nodeId, {
        full,
        clock: { ...clock, node: this.nodeId, at: this.now(), bounds: history.latencyBounds },
        apps,
        removed,
        ttlMs: this.ttlMs,
      });
      if (full) this.written.clear();
      for (const app of removed) this.written.delete(app);
      for (const [app, entry] of written) this.written.set(app, entry);
      this.pending.clear();
      this.full = false;
      if (hashWasMissing) return 'hash missing';
      return { full, apps: apps.size, removed: removed.length };
    } catch (err) {
      // What this publication held is not known to be there: the next one writes everything.
      this.full = true;
      throw err;
    }
  }
}
