/** Health memory in Redis: `<prefix>health:<taskId>` → JSON {healthy, since}, with a TTL. */
import type { Redis } from 'ioredis';
import type { RememberedHealth } from '../core/lifecycle.js';
import type { HealthStore, Observation } from '../control/health-memory.js';

const BATCH = 1000;

/**
 * SET … EX for every key, in one command: a pipeline of 1,000 SETs is 1,000
 * ioredis commands (each with its promise and buffers), and a first sync's
 * 100,000 of them grew the agent's heap by 110 MB and took 0.7 s; batches of
 * this script take 0.45 s and 28 MB.
 */
const SET_ALL_WITH_TTL = "local ttl = ARGV[1] for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl) end return #KEYS";

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

  /** In batches of 1,000, each one script call (SET_ALL_WITH_TTL), one after another. */
  async save(entries: Iterable<Observation>, ttlSeconds: number): Promise<void> {
    const ttl = String(Math.max(1, Math.round(ttlSeconds)));
    let keys: string[] = [];
    let values: string[] = [];
    for (const [id, health] of entries) {
      keys.push(this.key(id));
      values.push(JSON.stringify(health));
      if (keys.length === BATCH) {
        await this.redis.eval(SET_ALL_WITH_TTL, keys.length, ...keys, ttl, ...values);
        keys = [];
        values = [];
      }
    }
    if (keys.length > 0) await this.redis.eval(SET_ALL_WITH_TTL, keys.length, ...keys, ttl, ...values);
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
