/**
 * Each node's live traffic per app version, in Redis, so that a fleet's
 * numbers add up (`edgeroute compare`, GET /v1/traffic/fleet):
 *
 *   <prefix>traffic:<nodeId>    hash: app → JSON PublishedAppTraffic; replaced
 *                               whole at each publication and expiring after
 *                               three of them, so a node gone takes its numbers along
 *
 * Only apps that served requests in the live window are written.
 */
import type { Redis } from 'ioredis';
import type { TrafficWindow } from '../core/traffic.js';

/** One app on one node, as published. */
export interface PublishedAppTraffic {
  readonly app: string;
  readonly node: string;
  /** When the numbers were taken (ms). */
  readonly at: number;
  readonly defaultVersion: string | null;
  /** The latency histogram's bounds (seconds); null: the node keeps means only (HAProxy). */
  readonly bounds: readonly number[] | null;
  readonly versions: Readonly<Record<string, TrafficWindow>>;
}

export class TrafficBoard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(nodeId: string): string {
    return `${this.prefix}traffic:${nodeId}`;
  }

  /** Replaces this node's numbers; they expire after `ttlMs` unless published again. */
  async publish(nodeId: string, apps: readonly PublishedAppTraffic[], ttlMs: number): Promise<void> {
    const key = this.key(nodeId);
    const tx = this.redis.multi().del(key);
    if (apps.length > 0) {
      const fields: string[] = [];
      for (const app of apps) fields.push(app.app, JSON.stringify(app));
      tx.hset(key, ...fields).pexpire(key, ttlMs);
    }
    await tx.exec();
  }

  /** One app's numbers on each of these nodes (those that published some). */
  async read(app: string, nodeIds: readonly string[]): Promise<PublishedAppTraffic[]> {
    if (nodeIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of nodeIds) pipeline.hget(this.key(id), app);
    const replies = (await pipeline.exec()) ?? [];
    const found: PublishedAppTraffic[] = [];
    for (const [err, raw] of replies) {
      if (err || typeof raw !== 'string') continue;
      try {
        found.push(JSON.parse(raw) as PublishedAppTraffic);
      } catch {
        // a value that is not ours: skipped
      }
    }
    return found;
  }
}
