/**
 * ioredis (5.11) can end a Sentinel client for good: its failover detector,
 * still subscribed to +switch-master from the connection that died with the
 * old master, closes the connector when the sentinels announce the new one,
 * and a reconnect under way at that moment fails with "Connection is
 * closed." and leaves the client ended. An agent that meant to stay connected
 * starts such a client again.
 */
import type { Redis } from 'ioredis';

const RESTART_DELAY_MS = 200;

/**
 * Restarts `client` whenever it ends, until `wanted()` says it should stay
 * down (the agent stops); `onRestart` is told, `afterConnect` runs once it is
 * connected again (a subscriber subscribes again).
 */
export function restartWhenEnded(client: Redis, wanted: () => boolean, onRestart: () => void = () => undefined, afterConnect: () => void = () => undefined): void {
  client.on('end', () => {
    if (!wanted()) return;
    const timer = setTimeout(() => {
      if (!wanted() || client.status !== 'end') return;
      onRestart();
      client.connect().then(afterConnect, () => undefined);
    }, RESTART_DELAY_MS);
    timer.unref();
  });
}
