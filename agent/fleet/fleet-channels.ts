/**
 * The fleet's pub/sub: policy changes by anyone who PUBLISHes (the CLI, the
 * API, an operator) and drain announcements. Its own connection, which
 * queues the SUBSCRIBE until connected and renews it after a reconnect.
 */
import type { Redis } from 'ioredis';
import { restartWhenEnded } from './restart-ended.js';

export interface FleetChannelHandlers {
  /** Drain marks changed: read them at once. */
  drainsChanged(): void;
  /** A split policy changed; the message names the app. */
  policyChanged(app: string): void;
}

/** Subscribes to both channels; returns what to disconnect on stop. */
export function subscribeFleetChannels(redis: Redis, channels: { readonly policies: string; readonly drains: string }, on: FleetChannelHandlers): { disconnect(): void } {
  const subscriber = redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
  let stopped = false;
  const subscribe = () => void subscriber.subscribe(channels.policies, channels.drains).catch(() => undefined);
  restartWhenEnded(subscriber, () => !stopped, undefined, subscribe);
  subscriber.on('message', (channel: string, message: string) => {
    if (channel === channels.drains) on.drainsChanged();
    else on.policyChanged(message);
  });
  subscriber.on('error', () => undefined);
  subscribe();
  return {
    disconnect() {
      stopped = true;
      subscriber.disconnect();
    },
  };
}
