/**
 * The agent's Redis connection. Routing never waits for Redis: the link
 * reconnects in the background and reports its state for logs and probes.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export class RedisLink {
  readonly client: Redis;

  constructor(url: string, log: Logger) {
    this.client = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Reconnecting is cheap; coming back late costs shared memory.
      retryStrategy: (attempt) => Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)),
    });
    let wasReady = false;
    this.client.on('ready', () => {
      wasReady = true;
      log.info({ url: redactUrl(url) }, 'redis connected');
    });
    this.client.on('error', (err: Error) => {
      if (wasReady) log.warn({ url: redactUrl(url), err: err.message }, 'redis connection lost; retrying');
      wasReady = false;
    });
  }

  /** Calls `listener` every time the connection becomes ready (first connect and every reconnect). */
  onReady(listener: () => void): void {
    this.client.on('ready', listener);
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  connect(): void {
    this.client.connect().catch(() => undefined);
  }

  /** Resolves true once connected, or false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(value);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
