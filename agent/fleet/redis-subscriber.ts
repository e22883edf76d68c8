/**
 * A connection of its own for Redis pub/sub (one in subscriber mode serves
 * no other command). It queues the SUBSCRIBE until connected, renews it
 * after a reconnect, and is started again when ioredis ends it for good
 * (restart-ended.ts): a subscriber that silently stopped would leave the
 * agent waiting for its periodic reads after every notice.
 */
import type { Redis } from 'ioredis';
import { restartWhenEnded } from './restart-ended.js';

export interface RedisSubscription {
  disconnect(): void;
}

export function subscribeRedis(redis: Redis, channels: readonly string[], onMessage: (channel: string, message: string) => void): RedisSubscription {
  const subscriber = redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
  let stopped = false;
  const subscribe = () => void subscriber.subscribe(...channels).catch(() => undefined);
  restartWhenEnded(subscriber, () => !stopped, undefined, subscribe);
  subscriber.on('message', onMessage);
  subscriber.on('error', () => undefined);
  subscribe();
  return {
    disconnect() {
      stopped = true;
      subscriber.disconnect();
    },
  };
}
