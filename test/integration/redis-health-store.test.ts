import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisHealthStore } from '../../agent/fleet/redis-health-store.js';
import { startRedis, type RedisServer } from '../../agent/sandbox/redis-server.js';

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe('RedisHealthStore', () => {
  it('stores JSON under <prefix>health:<taskId> with a TTL, and loads it back', async () => {
    const store = new RedisHealthStore(redis, 'edge-test:');
    await store.save(new Map([['web.1', { healthy: true, since: '2026-11-01T00:00:01.000Z' }]]), 120);
    expect(JSON.parse((await redis.get('edge-test:health:web.1')) as string)).toEqual({ healthy: true, since: '2026-11-01T00:00:01.000Z' });
    const ttl = await redis.ttl('edge-test:health:web.1');
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    const loaded = await store.load(['web.1', 'web.2']);
    expect([...loaded.entries()]).toEqual([['web.1', { healthy: true, since: '2026-11-01T00:00:01.000Z' }]]);
  });

  it('ignores entries that are not its JSON (typed by hand)', async () => {
    await redis.set('edge-test:health:bad.1', 'yes');
    await redis.set('edge-test:health:bad.2', '{"healthy":"yes"}');
    const loaded = await new RedisHealthStore(redis, 'edge-test:').load(['bad.1', 'bad.2']);
    expect(loaded.size).toBe(0);
  });
});
