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
      retryStrategy: (attempt) => Math.min(10_000, 200 * 2 ** Math.min(attempt, 6)),
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

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  connect(): void {
    this.client.connect().catch(() => undefined);
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
