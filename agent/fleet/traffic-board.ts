/**
 * Each node's live traffic per app version, in Redis, so that a fleet's
 * numbers add up (`edgeroute compare`, GET /v1/traffic/fleet):
 *
 *   <prefix>traffic:<nodeId>    hash: "" → JSON NodeTrafficClock (the node's
 *                               history clock: its slot, the seconds read in
 *                               the live window, the histogram's bounds);
 *                               app → JSON PublishedAppSlots (each version's
 *                               counts in the live window's slots). Expires
 *                               after three publications, so a node gone
 *                               takes its numbers along.
 *
 * Counts per slot, not rates: an app's entry stays true while it serves
 * nothing (its slots only leave the window), so a node rewrites only the
 * apps that served requests since its last publication (traffic-publisher.ts)
 * and a reader computes each window from the node's clock, as the node does.
 */
import type { Redis } from 'ioredis';
import type { TrafficWindow } from '../core/traffic.js';
import { liveWindow, type LiveClock, type SlotCounts } from '../observe/traffic-history.js';

/** One app on one node, as a reader gets it: the live window of each version. */
export interface PublishedAppTraffic {
  readonly app: string;
  readonly node: string;
  /** When the node published its clock last (ms). */
  readonly at: number;
  readonly defaultVersion: string | null;
  /** The latency histogram's bounds (seconds); null: the node keeps means only. */
  readonly bounds: readonly number[] | null;
  readonly versions: Readonly<Record<string, TrafficWindow>>;
}

/** The node's entry "" : its history's clock at the last publication. */
export interface NodeTrafficClock extends LiveClock {
  readonly node: string;
  readonly at: number;
  readonly bounds: readonly number[] | null;
}

/** An app's entry: each version's slots, as [slot, ...counts] (traffic-history.ts SlotCounts). */
export interface PublishedAppSlots {
  readonly defaultVersion: string | null;
  readonly versions: Readonly<Record<string, ReadonlyArray<readonly number[]>>>;
}

/** The field of the node's clock: no app is named "". */
export const CLOCK_FIELD = '';

/** An app's entry as stored: counts rounded (latency sums to the µs) so the JSON stays short. */
export function encodeAppSlots(defaultVersion: string | null, versions: Readonly<Record<string, readonly SlotCounts[]>>): string {
  const out: Record<string, number[][]> = {};
  for (const [version, parts] of Object.entries(versions)) out[version] = parts.map((p) => [p.slot, ...p.counts.map((c) => Math.round(c * 1e6) / 1e6)]);
  return JSON.stringify({ defaultVersion, versions: out } satisfies PublishedAppSlots);
}

/** What a node writes in one publication. */
export interface TrafficWrite {
  /** Replace the whole hash (the first publication, and after a failure or a loss). */
  readonly full: boolean;
  readonly clock: NodeTrafficClock;
  /** app → encodeAppSlots(...). */
  readonly apps: ReadonlyMap<string, string>;
  /** Apps whose slots all left the window. */
  readonly removed: readonly string[];
  readonly ttlMs: number;
}

export class TrafficBoard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(nodeId: string): string {
    return `${this.prefix}traffic:${nodeId}`;
  }

  /**
   * Writes one publication in a transaction; the hash expires after `ttlMs`
   * unless published again. Resolves whether the clock entry was missing
   * before (the hash was lost: a delta then leaves out what it held).
   */
  async write(nodeId: string, w: TrafficWrite): Promise<{ hashWasMissing: boolean }> {
    const key = this.key(nodeId);
    const tx = this.redis.multi();
    if (w.full) tx.del(key);
    tx.hset(key, CLOCK_FIELD, JSON.stringify(w.clock));
    if (w.apps.size > 0) tx.hset(key, ...[...w.apps].flat());
    if (w.removed.length > 0) tx.hdel(key, ...w.removed);
    tx.pexpire(key, w.ttlMs);
    const replies = (await tx.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const clockReply = replies[w.full ? 1 : 0]?.[1];
    return { hashWasMissing: !w.full && clockReply === 1 };
  }

  /** One app's numbers on each of these nodes (those that published some): each version's live window as of the node's last publication. */
  async read(app: string, nodeIds: readonly string[]): Promise<PublishedAppTraffic[]> {
    if (nodeIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of nodeIds) pipeline.hmget(this.key(id), CLOCK_FIELD, app);
    const replies = (await pipeline.exec()) ?? [];
    const found: PublishedAppTraffic[] = [];
    for (const [err, reply] of replies) {
      if (err || !Array.isArray(reply)) continue;
      const [rawClock, rawApp] = reply as Array<string | null>;
      if (typeof rawClock !== 'string' || typeof rawApp !== 'string') continue;
      try {
        const clock = JSON.parse(rawClock) as NodeTrafficClock;
        const slots = JSON.parse(rawApp) as PublishedAppSlots;
        const versions: Record<string, TrafficWindow> = {};
        for (const [version, parts] of Object.entries(slots.versions)) {
          const window = liveWindow(clock, parts.map(([slot, ...counts]) => ({ slot: slot!, counts })), clock.bounds !== null);
          if (window) versions[version] = window;
        }
        if (Object.keys(versions).length === 0) continue;
        found.push({ app, node: clock.node, at: clock.at, defaultVersion: slots.defaultVersion, bounds: clock.bounds, versions });
      } catch {
        // a value that is not ours: skipped
      }
    }
    return found;
  }
}
