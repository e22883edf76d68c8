/** The rollouts recorded in Redis (`<prefix>rollout:<app>`, written by `edgeroute rollout`), read for the dashboard. */
import type { Redis } from 'ioredis';
import type { RolloutRecord } from '../operations/rollout.js';

/** The records of these apps, those that exist and parse. */
export async function readRollouts(redis: Redis, prefix: string, apps: readonly string[]): Promise<RolloutRecord[]> {
  if (apps.length === 0) return [];
  const found: RolloutRecord[] = [];
  const CHUNK = 1_000;
  for (let i = 0; i < apps.length; i += CHUNK) {
    const texts = await redis.mget(...apps.slice(i, i + CHUNK).map((app) => `${prefix}rollout:${app}`));
    for (const text of texts) {
      if (text === null) continue;
      try {
        const record = JSON.parse(text) as RolloutRecord;
        if (typeof record?.app === 'string' && typeof record.phase === 'string') found.push(record);
      } catch {
        // not a rollout record: the rollout command says so when it meets it
      }
    }
  }
  return found;
}
