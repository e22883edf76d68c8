/**
 * The fleet's pub/sub: policy changes by anyone who PUBLISHes (the CLI, the
 * API, an operator) and drain announcements, on one subscriber connection
 * (redis-subscriber.ts).
 */
import type { Redis } from 'ioredis';
import { subscribeRedis, type RedisSubscription } from './redis-subscriber.js';

export interface FleetChannelHandlers {
  /** Drain marks changed: read them at once. */
  drainsChanged(): void;
  /** A split policy changed; the message names the app. */
  policyChanged(app: string): void;
}

/** Subscribes to both channels; returns what to disconnect on stop. */
export function subscribeFleetChannels(redis: Redis, channels: { readonly policies: string; readonly drains: string }, on: FleetChannelHandlers): RedisSubscription {
  return subscribeRedis(redis, [channels.policies, channels.drains], (channel, message) => {
    if (channel === channels.drains) on.drainsChanged();
    else on.policyChanged(message);
  });
}
