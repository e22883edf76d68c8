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

  it('writes many entries in commands of 1,000, every one with its TTL', async () => {
    const store = new RedisHealthStore(redis, 'edge-many:');
    const entries = new Map(Array.from({ length: 2_500 }, (_, i) => [`t${i}`, { healthy: i % 2 === 0, since: null }] as const));
    let commands = 0;
    const monitor = await redis.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'eval' || args[0]?.toLowerCase() === 'evalsha') commands++;
    });
    await new RedisHealthStore(redis, 'edge-many:').save(entries, 60);
    await new Promise((r) => setTimeout(r, 100));
    monitor.disconnect();
    expect(commands).toBe(3);
    const loaded = await store.load([...entries.keys()]);
    expect(loaded).toEqual(entries);
    expect(await redis.ttl('edge-many:health:t2499')).toBeGreaterThan(50);
  });

  it('keeps every value with its own task when ids are odd: a separator in one, one empty, one with spaces', async () => {
    const store = new RedisHealthStore(redis, 'edge-odd:');
    const entries = new Map<string, { healthy: boolean; since: string | null }>([
      ['a.1', { healthy: true, since: '2026-11-01T00:00:01.000Z' }],
      ['odd\nid', { healthy: false, since: null }],
      ['', { healthy: true, since: null }],
      ['b 2', { healthy: false, since: '2026-11-01T00:00:02.000Z' }],
      ['c.3', { healthy: true, since: '2026-11-01T00:00:03.000Z' }],
    ]);
    await store.save(entries, 60);
    expect(await store.load([...entries.keys()])).toEqual(entries);
    expect(await redis.ttl('edge-odd:health:odd\nid')).toBeGreaterThan(50);
  });

  it('ignores entries that are not its JSON (typed by hand)', async () => {
    await redis.set('edge-test:health:bad.1', 'yes');
    await redis.set('edge-test:health:bad.2', '{"healthy":"yes"}');
    const loaded = await new RedisHealthStore(redis, 'edge-test:').load(['bad.1', 'bad.2']);
    expect(loaded.size).toBe(0);
  });
});
