/** Split policies in Redis: `<prefix>policy:<app>`, with a PUBLISH on `<prefix>policy-changed` after each write. */
import type { Redis } from 'ioredis';

export class RedisPolicies {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(app: string): string {
    return `${this.prefix}policy:${app}`;
  }

  get channel(): string {
    return `${this.prefix}policy-changed`;
  }

  /** Stores the policy text as given (already checked), then tells the plugins. */
  async set(app: string, text: string): Promise<void> {
    await this.redis.set(this.key(app), text);
    await this.redis.publish(this.channel, app);
  }

  /**
   * Whether the writes made so far on this connection reached a replica
   * (WAIT 1, up to `timeoutMs`): the master answers a write before
   * replicating it, and a failover right then promotes a replica without it.
   * `replicas`: how many the master has (ROLE); 0 when none, or when it will
   * not say (then there is nothing to wait for).
   */
  async replicated(timeoutMs: number): Promise<{ replicas: number; confirmed: number }> {
    let replicas = 0;
    try {
      const role = (await this.redis.call('ROLE')) as unknown[];
      replicas = role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : 0;
    } catch {
      return { replicas: 0, confirmed: 0 };
    }
    if (replicas === 0) return { replicas, confirmed: 0 };
    const confirmed = Number(await this.redis.call('WAIT', '1', String(timeoutMs)));
    return { replicas, confirmed };
  }

  get(app: string): Promise<string | null> {
    return this.redis.get(this.key(app));
  }

  /** Returns whether there was a policy to remove. */
  async remove(app: string): Promise<boolean> {
    const removed = await this.redis.del(this.key(app));
    await this.redis.publish(this.channel, app);
    return removed > 0;
  }

  /** App names that have a policy, sorted. */
  async list(): Promise<string[]> {
    const apps: string[] = [];
    const start = this.key('');
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${escapeGlob(start)}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) apps.push(key.slice(start.length));
    } while (cursor !== '0');
    return apps.sort();
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
