/** Health memory in Redis: `<prefix>health:<taskId>` → JSON {healthy, since}, with a TTL. */
import type { Redis } from 'ioredis';
import type { RememberedHealth } from '../core/lifecycle.js';
import type { HealthStore } from '../control/health-memory.js';
import { execChecked } from './batch-replies.js';

const BATCH = 1000;

export class RedisHealthStore implements HealthStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(taskId: string): string {
    return `${this.prefix}health:${taskId}`;
  }

  async load(taskIds: readonly string[]): Promise<Map<string, RememberedHealth>> {
    const found = new Map<string, RememberedHealth>();
    for (let i = 0; i < taskIds.length; i += BATCH) {
      const ids = taskIds.slice(i, i + BATCH);
      const values = await this.redis.mget(ids.map((id) => this.key(id)));
      values.forEach((raw, index) => {
        const health = raw === null ? null : parseHealth(raw);
        if (health) found.set(ids[index] as string, health);
      });
    }
    return found;
  }

  /** In pipelines of 1,000: a first sync of 100,000 tasks as one pipeline held 250 MB more at its peak. */
  async save(entries: ReadonlyMap<string, RememberedHealth>, ttlSeconds: number): Promise<void> {
    const ttl = Math.max(1, Math.round(ttlSeconds));
    let pipeline = this.redis.pipeline();
    let queued = 0;
    for (const [id, health] of entries) {
      pipeline.set(this.key(id), JSON.stringify(health), 'EX', ttl);
      if (++queued === BATCH) {
        await execChecked(pipeline);
        pipeline = this.redis.pipeline();
        queued = 0;
      }
    }
    if (queued > 0) await execChecked(pipeline);
  }
}

/** Entries written by hand or by another version are checked, not trusted. */
function parseHealth(raw: string): RememberedHealth | null {
  try {
    const value = JSON.parse(raw) as { healthy?: unknown; since?: unknown };
    if (typeof value.healthy !== 'boolean') return null;
    return { healthy: value.healthy, since: typeof value.since === 'string' ? value.since : null };
  } catch {
    return null;
  }
}
